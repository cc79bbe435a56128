"""The watch pane on the real engine: perf (zero-stop) and gdb (after the confirm), refusals, exit paths."""

from __future__ import annotations

import re

import pytest
from textual.widgets import DataTable, Input, Static

from hftmem_tui.services import REFUSALS
from hftmem_tui.sources.memory import read_memory
from hftmem_tui.sources.watchpoint import resolve_target
from hftmem_tui.ui.cost import InspectorCost
from hftmem_tui.ui.header import TargetHeader
from hftmem_tui.ui.screenshots import recorded_app, replay_all
from hftmem_tui.ui.watch_pane import ConfirmAttach, WatchPane
from tests.conftest import proc_status
from tests.helpers import live_app, text_of, wait_for, wait_for_pilot

PERF_FIELD = "hftmem_engine_stats.ticks"  # written by the producer on every burst
SLOW_FIELD = "hftmem_engine_stats.window_index"  # written once per latency window (about 1/s): gdb-friendly


def tracer(pid: int) -> int:
    return int(proc_status(pid)["TracerPid"])


def header(app) -> str:
    return text_of(app.query_one(TargetHeader))


@pytest.mark.slow
async def test_perf_watch_logs_hits_and_never_traces(engine):
    """Typing a field and enter arms a perf watchpoint: hits with location and value, TracerPid 0 throughout."""
    pid = engine()
    app = live_app(pid, interval_s=0.25, smaps_every=4)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("8")
        pane = app.query_one(WatchPane)
        assert "backend perf" in text_of(app.query_one("#watch-mode", Static))
        assert "debug registers 0/4" in text_of(app.query_one("#watch-mode", Static))
        await pilot.press("slash")
        assert app.focused is app.query_one("#watch-target", Input)
        await pilot.press(*PERF_FIELD, "enter")
        hits = app.query_one("#watch-hits", DataTable)
        tracers = []

        def enough() -> bool:
            tracers.append(tracer(pid))
            return hits.row_count >= 3

        await wait_for_pilot(pilot, enough, timeout=30)
        assert set(tracers) == {0}
        row = hits.get_row_at(0)
        assert str(row[3]).endswith("(read after)") and " -> " in str(row[3])
        assert "read after the write" in str(hits.columns["value"].label)
        assert re.search(r"run_producer.*\+0x[0-9a-f]+ engine\.(h|cpp):\d+", str(row[4]))  # function+offset file:line
        assert str(row[5]).startswith("never")
        table = app.query_one("#watch-table", DataTable)
        cells = [str(c) for c in table.get_row_at(0)]
        assert cells[1] == PERF_FIELD and cells[2] == "perf" and cells[7] == "armed"
        assert "us/hit" in cells[6]  # hits/s x measured cost per hit
        assert "debug registers 1/4" in text_of(app.query_one("#watch-mode", Static))
        assert "observing — engine never paused" in header(app)
        await wait_for_pilot(pilot, lambda: "perf watch" in (cost := text_of(app.query_one(InspectorCost)))
                             and "hits/s" in cost, what="the cost line to count the perf watch")
        await wait_for_pilot(pilot, lambda: "#" in text_of(app.query_one("#watch-backtrace", Static)))
        # disarm with d on the armed table
        table.focus()
        await pilot.press("d")
        await wait_for_pilot(pilot, lambda: table.row_count == 0)
        assert not pane.watches
        await pilot.press("q")
    assert tracer(pid) == 0


@pytest.mark.slow
async def test_gdb_watch_confirms_attaches_logs_pauses_and_detaches(engine):
    """gdb only after the confirm; header says ptrace-attached; hits carry the pause; disarm detaches."""
    pid = engine()
    app = live_app(pid, interval_s=0.25, smaps_every=4)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("8")
        pane = app.query_one(WatchPane)
        await pilot.press("ctrl+g")
        assert "backend gdb" in text_of(app.query_one("#watch-mode", Static))
        app.query_one("#watch-target", Input).value = SLOW_FIELD
        await pilot.press("slash", "enter")
        await wait_for_pilot(pilot, lambda: isinstance(app.screen, ConfirmAttach), timeout=20)
        assert tracer(pid) == 0  # nothing attached before the user says yes
        assert "pauses" in text_of(app.screen.query_one("#confirm-text", Static)) or \
            "stops every thread" in text_of(app.screen.query_one("#confirm-text", Static))
        await pilot.press("y")
        await wait_for_pilot(pilot, lambda: "ptrace-attached for 1 watchpoint" in header(app), timeout=30)
        assert tracer(pid) != 0
        assert "attaching paused the engine" in text_of(app.query_one("#watch-mode", Static))
        hits = app.query_one("#watch-hits", DataTable)
        await wait_for_pilot(pilot, lambda: hits.row_count >= 2, timeout=20)
        row = [str(c) for c in hits.get_row_at(0)]
        assert row[5].endswith(" ms") and "read after" not in row[3]
        table = app.query_one("#watch-table", DataTable)
        assert [str(c) for c in table.get_row_at(0)][2] == "gdb"
        table.focus()
        await pilot.press("d")
        await wait_for_pilot(pilot, lambda: "observing — engine never paused" in header(app), timeout=20)
        assert tracer(pid) == 0
        assert "gdb detached (TracerPid 0)" in text_of(app.query_one("#watch-mode", Static))
        assert not pane.gdb_attached
        await pilot.press("q")
    assert tracer(pid) == 0 and proc_status(pid)["State"][0] in "RS"


async def test_forbidden_expression_is_refused_with_a_notice(engine):
    """An assignment never reaches a lookup or a debugger: a notice, the field unchanged, no watch."""
    pid = engine()
    spec = resolve_target(pid, "hftmem_engine_stats.pool_capacity")
    before = read_memory(pid, spec.address, spec.length)
    app = live_app(pid, interval_s=0.25, smaps_every=4)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("8")
        pane = app.query_one(WatchPane)
        for text in ("hftmem_engine_stats.pool_capacity = 0", "abort()", "hftmem_engine_stats.pool_capacity++"):
            assert pane.arm(text) is None
            assert "refused" in text_of(app.query_one("#watch-notice", Static))
        await pilot.pause(0.2)  # an absence is watched for a while: a late row would appear by the next redraw
        assert app.query_one("#watch-table", DataTable).row_count == 0
        assert not pane.watches
        await pilot.press("q")
    assert read_memory(pid, spec.address, spec.length) == before
    assert tracer(pid) == 0


@pytest.mark.slow
async def test_exit_with_an_armed_gdb_watch_detaches(engine):
    """Quitting while gdb holds a watchpoint leaves the engine running and untraced."""
    pid = engine()
    app = live_app(pid, interval_s=0.25, smaps_every=4)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("8")
        pane = app.query_one(WatchPane)
        pane.arm(SLOW_FIELD, via="gdb")
        await wait_for_pilot(pilot, lambda: isinstance(app.screen, ConfirmAttach), timeout=20)
        await pilot.press("y")
        await wait_for_pilot(pilot, lambda: "ptrace-attached for 1 watchpoint" in header(app), timeout=30)
        assert tracer(pid) != 0
        await pilot.press("ctrl+c")  # the exit hook detaches before the app is gone
        assert tracer(pid) == 0
    # left running and untraced once the app is gone
    wait_for(lambda: (st := proc_status(pid))["State"][0] in "RS" and int(st["TracerPid"]) == 0, 5,
             lambda: f"engine {pid} running and untraced: {proc_status(pid)['State']}")


async def test_hot_field_guard_disarms_and_says_why(engine):
    """A max rate below the field's write rate: the perf watchpoint is disarmed with the reason shown."""
    pid = engine()
    app = live_app(pid, interval_s=0.25, smaps_every=4)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("8")
        pane = app.query_one(WatchPane)
        app.query_one("#watch-max-rate", Input).value = "50"  # ticks is written ~1,000 times a second
        wid = pane.arm(PERF_FIELD)
        assert wid is not None and "hot-field guard at 50 hits/s" in text_of(app.query_one("#watch-mode", Static))
        notice = app.query_one("#watch-notice", Static)
        await wait_for_pilot(pilot, lambda: "hot field" in text_of(notice), timeout=20)
        assert "above the limit of 50 hits/s" in text_of(notice)
        assert wid not in pane.watches and app.query_one("#watch-table", DataTable).row_count == 0
        assert "debug registers 0/4" in text_of(app.query_one("#watch-mode", Static))
        await pilot.press("q")
    assert tracer(pid) == 0


@pytest.mark.slow
async def test_disarm_while_gdb_attaches_still_detaches(engine):
    """d right after the confirm (gdb still attaching): the watchpoint goes, gdb detaches, TracerPid 0."""
    pid = engine()
    app = live_app(pid, interval_s=0.25, smaps_every=4)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("8")
        pane = app.query_one(WatchPane)
        wid = pane.arm(SLOW_FIELD, via="gdb")
        await wait_for_pilot(pilot, lambda: isinstance(app.screen, ConfirmAttach), timeout=20)
        app.pop_screen()
        pane._confirmed(wid, True)  # what "y" does; then d before the gdb thread can report (same loop turn)
        assert pane.watches[wid].state == "attaching"
        pane.disarm(wid)
        await wait_for_pilot(pilot, lambda: not pane.watches and "gdb detached" in text_of(
            app.query_one("#watch-mode", Static)), timeout=30)
        assert "observing — engine never paused" in header(app)
        assert tracer(pid) == 0
        await pilot.press("q")
    assert tracer(pid) == 0


async def test_a_recording_refuses_watchpoints():
    """On a recording (no engine): the pane says why in place of its form, arm() is refused with the
    same words, and nothing is held (no controller on the recorded pid)."""
    app = recorded_app()
    async with app.run_test(size=(120, 40)) as pilot:
        replay_all(app)
        await pilot.press("8")
        pane = app.query_one(WatchPane)
        assert pane.controller is None and not pane.live
        assert text_of(app.query_one("#watch-unavailable", Static)) == f"watchpoints: {REFUSALS['watch']}"
        assert not app.query("#watch-target")
        assert pane.arm(PERF_FIELD) is None
        await wait_for_pilot(pilot, lambda: any(REFUSALS["watch"] in n.message for n in app._notifications),
                             what="the refusal notice")
        assert pane.watches == {} and pane.registers_used() == 0 and pane.armed_events() == ()
        pane.shutdown()  # the exit hook has nothing to detach
