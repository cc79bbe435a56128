"""The allocs pane on the real engine: opt-in uprobes, per-thread rates, the hot-alloc alarm, probes removed."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Static

from hftmem_tui.services import REFUSALS
from hftmem_tui.sources.perf.uprobes import (
    list_session_probes,
    session_group,
)
from hftmem_tui.ui.alloc_calls_pane import AllocsPane
from hftmem_tui.ui.cost import InspectorCost
from hftmem_tui.ui.screenshots import recorded_app, replay_all
from tests.conftest import proc_status
from tests.helpers import (
    engine_counter,
    live_app,
    text_of,
    uprobes_mark,
    wait_for_pilot,
)

needs_uprobes = uprobes_mark()
WINDOW = "hftmem_engine_stats.window_index"  # +1 per second of the engine running
OURS = session_group()  # the App runs in this process; other sessions on the machine may hold probes


@needs_uprobes
@pytest.mark.slow
async def test_hot_alloc_raises_the_alarm_and_probes_are_removed(engine):
    """s (after the cost is shown) counts per thread; b marks the busiest hot; hot-alloc's strategy thread alarms."""
    pid = engine("--scenario", "hot-alloc")
    app = live_app(pid, interval_s=0.25, smaps_every=4)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("9")
        pane = app.query_one(AllocsPane)
        intro = app.query_one("#allocs-intro", Static)
        await wait_for_pilot(pilot, lambda: pane.cost_s is not None, timeout=20)
        assert "us (measured on this machine)" in text_of(intro) and "off (opt-in)" in text_of(intro)
        assert not list_session_probes(group=OURS)  # nothing on the engine before the user asks
        await pilot.press("s")
        table = app.query_one("#allocs-table", DataTable)
        await wait_for_pilot(pilot, lambda: pane.report is not None and pane.suggested, timeout=20)
        assert list_session_probes(group=OURS)
        names = {str(table.get_row(k)[1]) for k in table.rows}
        assert {"hftmem-strat", "hftmem-md"} <= names
        await pilot.press("b")  # hftmem's suggestion: the busy-polling threads
        alarm = app.query_one("#allocs-alarm", Static)
        await wait_for_pilot(pilot, lambda: "ALARM: hot thread" in text_of(alarm), timeout=20)
        assert "hftmem-strat" in text_of(alarm)
        await wait_for_pilot(pilot, lambda: "first offenders" in text_of(alarm), timeout=20)
        assert "engine.cpp:" in text_of(alarm)  # a call chain into the engine's source
        strat = next(k for k in table.rows if str(table.get_row(k)[1]) == "hftmem-strat")
        cols = [c.key.value for c in table.columns.values()]
        assert float(str(table.get_row(strat)[cols.index("malloc")]).replace(",", "")) > 100
        await wait_for_pilot(pilot, lambda: "uprobes" in text_of(app.query_one(InspectorCost)),
                             what="the cost line to count the uprobes")
        await pilot.press("ctrl+c")  # the exit hook removes the probes
    assert not list_session_probes(group=OURS)
    assert int(proc_status(pid)["TracerPid"]) == 0


@needs_uprobes
@pytest.mark.slow
async def test_healthy_engine_marked_hot_has_no_alarm(engine):
    """The default engine's hot threads do not allocate: no alarm; s again removes the probes."""
    pid = engine()
    app = live_app(pid, interval_s=0.25, smaps_every=4)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("9", "s")
        pane = app.query_one(AllocsPane)
        await wait_for_pilot(pilot, lambda: pane.report is not None and pane.suggested, timeout=30)
        # warm-up: the engine's start-up allocations are over after its first seconds of running
        start = engine_counter(pid, WINDOW)
        await wait_for_pilot(pilot, lambda: engine_counter(pid, WINDOW) >= start + 2, what="2 engine windows")
        await pilot.press("b")
        alarm = app.query_one("#allocs-alarm", Static)
        await wait_for_pilot(pilot, lambda: "no alarm" in text_of(alarm), timeout=20)
        # the alarm stays off while the probed engine runs 2 more latency windows (about 2 s)
        start = engine_counter(pid, WINDOW)
        await wait_for_pilot(pilot, lambda: "ALARM" in text_of(alarm) or engine_counter(pid, WINDOW) >= start + 2,
                             what="2 engine windows")
        assert "ALARM" not in text_of(alarm)
        await pilot.press("s")
        await wait_for_pilot(pilot, lambda: not pane.running and "probes removed" in text_of(
            app.query_one("#allocs-intro", Static)), timeout=10)
        assert not list_session_probes(group=OURS)
        await pilot.press("q")


async def test_a_recording_refuses_the_probes():
    """On a recording (no engine, no root needed): the intro says why, s says it again, nothing is probed."""
    app = recorded_app()
    async with app.run_test(size=(120, 40)) as pilot:
        replay_all(app)
        await pilot.press("9")
        pane = app.query_one(AllocsPane)
        assert pane.probes is None and pane.unavailable == REFUSALS["allocs"]
        intro = " ".join(text_of(app.query_one("#allocs-intro", Static)).split())
        assert intro == f"allocation alarms: {REFUSALS['allocs']}"
        await pilot.press("s")
        await wait_for_pilot(pilot, lambda: any(n.message == f"allocation probes: {REFUSALS['allocs']}"
                                                for n in app._notifications), what="the refusal notice")
        assert not pane.running and not pane.checked and pane.armed_events() == ()
