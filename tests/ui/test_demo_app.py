"""`hftmem demo`: the whole tour driven by keys on the real engine, and the command in a real terminal."""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import TabbedContent

from hftmem_tui.demo.chapters import CHAPTERS, chapter_names, find_chapter
from hftmem_tui.demo.tour_state import TourProgress
from hftmem_tui.feeds.recording import RecordedFeed
from hftmem_tui.feeds.sampler import LiveSampler
from hftmem_tui.services import REFUSALS, LiveServices, RecordedServices
from hftmem_tui.sources.engine import EngineControl
from hftmem_tui.ui.demo_app import TourApp
from hftmem_tui.ui.screenshots import RECORDING
from tests.conftest import proc_status
from tests.helpers import gone, needs_tmux, wait_for, wait_for_pilot


def make_app(pid: int, progress: Path, start: str | None = None) -> TourApp:
    """The tour on a live sampler of the engine ``pid`` and its live services."""
    sampler = LiveSampler(pid, interval_s=0.25, smaps_every=2, perf=False)
    return TourApp(sampler, services=LiveServices(sampler.start()), start=start, progress_path=progress,
                   refresh_s=0.25)


def recorded_tour(progress: Path, start: str | None = None) -> TourApp:
    """The tour on the committed recording and its refusing services (no engine), sampler thread off."""
    feed = RecordedFeed(str(RECORDING))
    return TourApp(feed, services=RecordedServices(feed.start()), start=start, progress_path=progress,
                   refresh_s=feed.interval_s, sampling=False)


@pytest.mark.slow
def test_whole_tour_on_the_real_engine(engine, tmp_path):
    """Every chapter: b turns the bug on, the live data marks it observed, f turns it off, n moves on."""
    pid = engine()
    control = EngineControl(pid)
    progress = tmp_path / "tour.json"

    async def run() -> None:
        app = make_app(pid, progress)
        async with app.run_test(size=(120, 36)) as pilot:
            panel = app.tour
            await wait_for_pilot(pilot, lambda: panel.state.last is not None, 15)
            for i, chapter in enumerate(CHAPTERS):
                assert panel.state.chapter is chapter
                assert app.query_one(TabbedContent).active == chapter.pane  # focus moved to the chapter's pane
                await pilot.press("b")
                await wait_for_pilot(pilot, lambda: panel.state.observed_now, chapter.timeout_s + 3,
                               lambda: f"{chapter.name}: {panel.state.observation} after {len(panel.state.samples)} samples")
                assert chapter.scenario in control.status().scenarios
                if chapter.name == "leak":
                    assert app.query_one("#leak-verdict").has_class("tour-highlight")
                if chapter.name == "fragmentation":  # the [heap] row is the table's cursor row
                    mappings = app.pane_widget("mappings")
                    await wait_for_pilot(pilot, lambda: (mappings.cursor_key or (0, ""))[1] == "[heap]", 5)
                await pilot.press("f")
                await wait_for_pilot(pilot, lambda: chapter.scenario not in control.status().scenarios, 3)
                if i + 1 < len(CHAPTERS):
                    await pilot.press("n")
            await wait_for_pilot(pilot, lambda: set(TourProgress.load(progress).observed) == set(chapter_names()), 3)
            assert TourProgress.load(progress).current == CHAPTERS[-1].name
        assert control.status().scenarios == frozenset()
        assert proc_status(pid)["TracerPid"] == "0"

    asyncio.run(run())


@pytest.mark.slow
def test_watch_key_catches_the_write_with_its_backtrace(engine, tmp_path):
    """w arms a zero-stop perf watchpoint on the chapter's target and shows the hit's call chain."""
    pid = engine()

    async def run() -> None:
        app = make_app(pid, tmp_path / "tour.json", start="double-free")
        async with app.run_test(size=(120, 36)) as pilot:
            panel = app.tour
            await wait_for_pilot(pilot, lambda: panel.state.last is not None, 15)
            await pilot.press("b", "w")
            await wait_for_pilot(pilot, lambda: app.watch_results, 10)
            text = "\n".join(app.watch_results[0])
            assert "hftmem_order_pool.double_frees_" in text and "ObjectPool<Order" in text, text
            assert "on_tick" in text
            await pilot.press("f")
        assert proc_status(pid)["TracerPid"] == "0" and not proc_status(pid)["State"].startswith("T")

    asyncio.run(run())


def test_resumes_at_the_saved_chapter(tmp_path):
    """The saved chapter and its pane come back; c lists the chapters (recording: no engine needed)."""
    progress = tmp_path / "tour.json"
    TourProgress("overflow", {"leak": "seen"}).save(progress)

    async def run() -> None:
        app = recorded_tour(progress)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert app.tour.state.chapter.name == "overflow"
            assert app.query_one(TabbedContent).active == find_chapter("overflow").pane
            await pilot.press("c")
            await pilot.pause()
            assert type(app.screen).__name__ == "ChapterList"

    asyncio.run(run())


def test_a_recording_refuses_scenario_switches_and_watchpoints(tmp_path):
    """On a recording, b and w reach RecordedServices, which refuse: a notice and a result line say why,
    and nothing is sent to whatever process has the recorded pid now."""

    async def run() -> None:
        app = recorded_tour(tmp_path / "tour.json", start="double-free")
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()
            await pilot.press("b")
            await wait_for_pilot(pilot, lambda: any(REFUSALS["engine"] in str(n.message) for n in app._notifications), 5)
            await pilot.press("w")
            await wait_for_pilot(pilot, lambda: app.watch_results, 5)
            target = find_chapter("double-free").watch
            assert app.watch_results == [[f"watch {target}: {REFUSALS['watch']}"]]

    asyncio.run(run())


# --------------------------------------------------------------------------- a real terminal


def _engine_children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"hftmem-engine" in cmd:
            out.append(int(d.name))
    return out


@pytest.mark.slow
@needs_tmux
def test_hftmem_demo_in_tmux_steps_two_chapters_and_quits(engine_binary, tmp_path, tmux):
    t0 = time.monotonic()
    t = tmux(f"HFTMEM_ENGINE={shlex.quote(str(engine_binary))} XDG_STATE_HOME={shlex.quote(str(tmp_path))} "
             f"{shlex.quote(sys.executable)} -m hftmem_tui.cli demo", height=36)
    t.wait_for(CHAPTERS[0].title, timeout=10)
    opened = time.monotonic() - t0
    engines = _engine_children(t.hftmem_pid())
    assert len(engines) == 1, "hftmem demo runs exactly one engine"
    t.wait_for("RSS", timeout=5)  # the live panes are drawn too
    t.keys("n")
    t.wait_for(CHAPTERS[1].title, timeout=5)
    t.keys("n")
    t.wait_for(CHAPTERS[2].title, timeout=5)
    t.keys("q")
    t.wait_for("EXITED 0", timeout=10)
    wait_for(lambda: gone(engines[0]), 5, "the demo engine to end with hftmem demo")
    assert TourProgress.load(tmp_path / "hftmem" / "tour.json").current == CHAPTERS[2].name
    print(f"tour on screen {opened:.1f} s after start")
