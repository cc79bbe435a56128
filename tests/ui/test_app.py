"""HftmemApp driven by App.run_test(): on the real demo engine where a test checks behaviour (live data,
reads, the audit, the exit paths), on the committed recording with RecordedServices where it checks
drawing and keys (no engine)."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import DataTable, Static, TabbedContent

from hftmem_tui.feeds.sampler import LiveSampler
from hftmem_tui.services import REFUSALS, LiveServices
from hftmem_tui.ui.app import HelpScreen, HftmemApp
from hftmem_tui.ui.audit_pane import AuditPanel
from hftmem_tui.ui.header import TargetHeader
from hftmem_tui.ui.latency_pane import LatencyHistory
from hftmem_tui.ui.mappings_pane import MappingTable
from hftmem_tui.ui.memory_pane import MemoryPanel
from hftmem_tui.ui.perf_pane import NOT_SUPPORTED, PerfCounters
from hftmem_tui.ui.pools_pane import AllocatorGauges
from hftmem_tui.ui.screenshots import recorded_app, replay_all
from tests.conftest import proc_status
from tests.helpers import live_app, text_of, wait_for_pilot


@pytest.mark.slow
async def test_panes_show_the_live_engine(engine):
    """Overview RSS, [heap]/[stack] rows, allocator gauges, latency history; the engine is never traced."""
    pid = engine()
    app = live_app(pid)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_pilot(pilot, lambda: app.samples_seen >= 2)
        stats = text_of(app.query_one("#overview-stats", Static))
        assert "RSS" in stats and "MiB" in stats
        header = text_of(app.query_one(TargetHeader))
        assert f"pid {pid}" in header and "observing — engine never paused" in header

        await pilot.press("2")
        assert app.query_one(TabbedContent).active == "mappings"
        table = app.query_one(MappingTable).table
        await wait_for_pilot(pilot, lambda: table.row_count > 5)
        names = {str(table.get_row_at(i)[5]).lstrip("▲ ") for i in range(table.row_count)}
        assert {"[heap]", "[stack]"} <= names

        await pilot.press("4")
        gauges = text_of(app.query_one(AllocatorGauges))
        for symbol in ("hftmem_order_pool", "hftmem_scratch_arena", "hftmem_md_ring"):
            assert symbol in gauges
        assert "/4,096 live" in gauges

        await pilot.press("5")
        summary = text_of(app.query_one(LatencyHistory).query_one("#latency-summary", Static))
        assert "max" in summary and "p99.9" in summary
        assert len(app.history.gap_max) > 0
        assert proc_status(pid)["TracerPid"] == "0"
    assert proc_status(pid)["TracerPid"] == "0"
    assert not proc_status(pid)["State"].startswith("T")


async def test_mappings_sort_filter_and_cursor_kept():
    """s/r sort, / filters by name, and a refresh keeps the cursor on the same mapping (recording)."""
    app = recorded_app()
    samples = app.feed.samples
    async with app.run_test(size=(120, 40)) as pilot:
        for s in samples[:15]:  # two full smaps reads (samples 0 and 10)
            app.apply_sample(s)
        await pilot.press("2")
        view = app.query_one(MappingTable)
        table = view.table
        await wait_for_pilot(pilot, lambda: table.row_count > 5)
        assert app.focused is table  # showing the pane gives its table the keys
        await pilot.press("down", "down", "down")
        key = view.cursor_key
        shown = app.history.mappings_time
        for s in samples[15:25]:  # the next full smaps read is among them
            app.apply_sample(s)
        assert app.history.mappings_time != shown
        await pilot.pause(0.1)  # the redraw of the new rows; the cursor row is equal before it, so no condition tells
        assert view.cursor_key == key

        await pilot.press("s")  # rss -> dirty
        assert view.sort_column == "dirty"
        view.sort_by("kbytes")
        sizes = [int(str(table.get_row_at(i)[1]).replace(",", "")) for i in range(table.row_count)]
        assert sizes == sorted(sizes, reverse=True)
        await pilot.press("r")
        sizes = [int(str(table.get_row_at(i)[1]).replace(",", "")) for i in range(table.row_count)]
        assert sizes == sorted(sizes)

        await pilot.press("slash")
        for ch in "heap":
            await pilot.press(ch)
        await pilot.press("enter")
        assert view.filter_text == "heap"
        rows = [str(table.get_row_at(i)[5]) for i in range(table.row_count)]
        assert rows and all("heap" in r for r in rows)
        await pilot.press("escape")
        assert view.filter_text == "" and table.row_count > 5


@pytest.mark.slow
async def test_perf_memory_audit_help_and_quit(engine):
    """Perf rows (or 'not supported here'), a hex view of a symbol, the audit checks, help, q."""
    pid = engine()
    app = live_app(pid, perf=True)
    hook_calls = []
    app.add_exit_hook(lambda: hook_calls.append(proc_status(pid)["TracerPid"]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await wait_for_pilot(pilot, lambda: "task-clock" in app.history.perf)
        await wait_for_pilot(pilot, lambda: "task-clock" in (perf := text_of(app.query_one(PerfCounters)))
                             and "page-faults" in perf, what="task-clock and page-faults in the perf pane")
        perf = text_of(app.query_one(PerfCounters))
        for event in app.history.perf_unsupported:
            assert event in perf
        if app.history.perf_unsupported:
            assert NOT_SUPPORTED in perf

        await pilot.press("6")
        memory = app.query_one(MemoryPanel)
        memory.show("hftmem_engine_stats")
        await wait_for_pilot(pilot, lambda: memory.place is not None, timeout=30)
        assert "hftmem_engine_stats" in text_of(memory.query_one("#hex-header", Static))

        await pilot.press("7")
        audit = app.query_one(AuditPanel)
        await wait_for_pilot(pilot, lambda: audit.query_one(DataTable).row_count >= 8, timeout=30)

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
    assert hook_calls == ["0"]
    assert proc_status(pid)["TracerPid"] == "0"


async def test_target_exit_keeps_last_data(engine):
    """The engine dies: a banner says so, the last numbers stay, sampling stops."""
    import os
    import signal

    pid = engine()
    app = live_app(pid)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_pilot(pilot, lambda: app.samples_seen >= 1)
        os.kill(pid, signal.SIGKILL)
        await wait_for_pilot(pilot, lambda: app.target_gone is not None)
        banner = app.query_one("#banner", Static)
        assert banner.display and f"process {pid} exited" in text_of(banner)
        assert "showing the last data" in text_of(banner)
        seen = app.samples_seen
        assert "RSS" in text_of(app.query_one("#overview-stats", Static))
        await asyncio.sleep(0.5)
        assert app.samples_seen == seen


async def test_small_terminal_shows_a_notice():
    """Below the minimum size: a notice instead of the panes; 80x24 shows the panes (recording)."""
    app = recorded_app()
    async with app.run_test(size=(50, 12)) as pilot:
        replay_all(app)
        await pilot.pause()
        assert app.screen.has_class("too-small")
        assert app.query_one("#too-small", Static).display
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not app.screen.has_class("too-small")


async def test_allocators_file_gives_the_same_gauges(engine, tmp_path):
    """--allocators FILE: the TOML description drives the gauges; a bad member costs only its gauge."""
    from hftmem_tui.model.allocconfig import load_allocators
    from tests.conftest import ROOT

    text = (ROOT / "examples" / "allocators.toml").read_text()
    bad = text + '\n[[allocator]]\nsymbol = "hftmem_order_pool_typo"\nkind = "pool"\nlive = "live_"\ncapacity = 4096\n'
    path = tmp_path / "alloc.toml"
    path.write_text(bad)
    specs = load_allocators(path)
    pid = engine()
    sampler = LiveSampler(pid, interval_s=0.2, perf=False, allocators=specs)
    app = HftmemApp(sampler, services=LiveServices(sampler.start()), refresh_s=0.2, allocators=specs)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        symbols = ("hftmem_order_pool", "hftmem_scratch_arena", "hftmem_md_ring", "hftmem_md_ring_packed")
        await wait_for_pilot(pilot, lambda: all(s in text_of(app.query_one(AllocatorGauges)) for s in symbols),
                             what=lambda: f"{symbols} in the gauges: {text_of(app.query_one(AllocatorGauges))}")
        gauges = text_of(app.query_one(AllocatorGauges))
        assert "hftmem_order_pool_typo" not in gauges
        assert any("hftmem_order_pool_typo" in n for n in sampler.notes)


async def test_a_process_that_is_not_the_engine(tmp_path):
    """Any process: RSS and mappings; the engine-only panes say why they are empty."""
    import subprocess

    proc = subprocess.Popen(["sleep", "30"])
    try:
        app = live_app(proc.pid)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for_pilot(pilot, lambda: app.samples_seen >= 1)
            assert "RSS" in text_of(app.query_one("#overview-stats", Static))
            await pilot.press("4")
            gauges = lambda: text_of(app.query_one(AllocatorGauges))  # noqa: E731
            # why there are none
            await wait_for_pilot(pilot, lambda: gauges().startswith("engine:") and "hftmem_engine_stats" in gauges(),
                                 what=lambda: f"the gauges to say why there are none: {gauges()!r}")
            await pilot.press("5")
            latency = lambda: text_of(app.query_one(LatencyHistory).query_one("#latency-summary", Static))  # noqa: E731
            await wait_for_pilot(pilot, lambda: "only for the hftmem demo engine" in latency(),
                                 what=lambda: f"the latency pane to say it needs the engine: {latency()!r}")
    finally:
        proc.kill()
        proc.wait()


async def test_switching_panes_does_not_ping_pong_focus(monkeypatch):
    """7, 6, 7: the audit pane stays on screen with its table focused, and focus then stays put
    (a deferred focus in the memory pane once flipped the tabs back and forth, ever faster)."""
    from textual.screen import Screen

    calls = []
    original = Screen.set_focus

    def counting(self, widget, *args, **kwargs):
        calls.append(widget)
        return original(self, widget, *args, **kwargs)

    monkeypatch.setattr(Screen, "set_focus", counting)
    app = recorded_app()
    async with app.run_test(size=(120, 40)) as pilot:
        replay_all(app)
        for key in "767":
            await pilot.press(key)
            await pilot.pause(0.3)  # let each switch settle, as a user pressing keys would
        calls.clear()
        await pilot.pause(1.0)  # an absence is watched for a while: a ping-pong flips focus many times a second
        assert calls == []
        assert app.active_pane == "audit" and app.focused is not None and app.focused.id == "audit-table"


async def test_a_recording_shows_the_refusal_where_the_target_is_needed():
    """On a recording the memory, audit, watch and allocs panes show RecordedServices' refusal (never a
    read of whatever process has the recorded pid now); the audit key and the probe key do nothing."""
    app = recorded_app()
    async with app.run_test(size=(120, 40)) as pilot:
        replay_all(app)
        await pilot.press("6")
        assert text_of(app.query_one("#memory-view", Static)) == f"memory: {REFUSALS['memory']}"
        await pilot.press("7", "a")
        await wait_for_pilot(pilot, lambda: text_of(app.query_one("#audit-summary", Static))
                             == f"readiness audit: {REFUSALS['audit']}", what="the audit's refusal")
        assert app.audit_runs == 0
        await pilot.press("8")
        assert text_of(app.query_one("#watch-unavailable", Static)) == f"watchpoints: {REFUSALS['watch']}"
        await pilot.press("9", "s")
        await wait_for_pilot(pilot, lambda: f"allocation alarms: {REFUSALS['allocs']}"
                             in " ".join(text_of(app.query_one("#allocs-intro", Static)).split()),
                             what="the allocs pane's refusal")
        pane = app.pane_widget("allocs")
        assert not pane.running and pane.armed_events() == () and app.pane_widget("watch").armed_events() == ()
