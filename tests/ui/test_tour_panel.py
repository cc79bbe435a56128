"""TourPanel in a tiny host app on the real engine: keys switch bugs, live data marks chapters observed."""

from __future__ import annotations

import asyncio
import time

import pytest
from textual.app import App, ComposeResult
from textual.widgets import OptionList, Static
from textual.worker import get_current_worker

from hftmem_tui.demo.chapters import CHAPTERS, TourSample, chapter_names
from hftmem_tui.feeds.sampler import LiveSampler
from hftmem_tui.services import LiveServices
from hftmem_tui.sources.engine import EngineControl
from hftmem_tui.ui.tour_panel import ChapterList, TourPanel
from tests.helpers import wait_for_pilot


class TourHost(App):
    """The smallest host: samples the engine in a thread, switches scenarios as the panel asks (through
    the engine's services, as TourApp does)."""

    def __init__(self, pid: int, start: str | None = None) -> None:
        super().__init__()
        self.sampler = LiveSampler(pid, interval_s=0.25, smaps_every=4, budget=0.05, perf=False)
        self.services = LiveServices(self.sampler.start())
        self.start = start
        self.messages: list = []

    def compose(self) -> ComposeResult:
        yield TourPanel(start=self.start, observed={"leak": "seen last time"})

    def on_mount(self) -> None:
        self.query_one(TourPanel).focus()
        self.run_worker(self._sample, thread=True, exclusive=True, group="sampler")

    def _sample(self) -> None:
        worker = get_current_worker()
        try:
            while not worker.is_cancelled:
                s = TourSample.from_live(self.sampler.sample())
                self.call_from_thread(self.query_one(TourPanel).show_sample, s)
                time.sleep(0.25)  # the host's sampling interval, not a wait
        finally:
            self.sampler.close()

    def on_tour_panel_scenario_requested(self, m: TourPanel.ScenarioRequested) -> None:
        self.messages.append(m)
        self.run_worker(lambda: self.services.engine_control().set_scenario(m.scenario, m.on), thread=True)

    def on_tour_panel_chapter_changed(self, m: TourPanel.ChapterChanged) -> None:
        self.messages.append(m)

    def on_tour_panel_chapter_observed(self, m: TourPanel.ChapterObserved) -> None:
        self.messages.append(m)

    def on_tour_panel_watch_requested(self, m: TourPanel.WatchRequested) -> None:
        self.messages.append(m)


def status(panel: TourPanel) -> str:
    return str(panel.query_one("#tour-status", Static).render())


@pytest.mark.slow
def test_whole_tour_by_keys_on_the_real_engine(engine):
    pid = engine()
    control = EngineControl(pid)

    async def run() -> None:
        app = TourHost(pid)
        async with app.run_test(size=(100, 30)) as pilot:
            panel = app.query_one(TourPanel)
            await wait_for_pilot(pilot, lambda: panel.state.last is not None, 15)
            for i, chapter in enumerate(CHAPTERS):
                assert panel.state.chapter is chapter
                assert chapter.title in str(panel.query_one("#tour-title", Static).render())
                await pilot.press("b")
                await wait_for_pilot(pilot, lambda: panel.state.observed_now, chapter.timeout_s + 3)
                assert "OBSERVED" in status(panel)
                assert chapter.scenario in control.status().scenarios
                await pilot.press("f")
                await wait_for_pilot(pilot, lambda: chapter.scenario not in control.status().scenarios, 3)
                assert "fixed: bug off" in status(panel)
                gauge = str(panel.query_one("#tour-gauge", Static).render())
                assert chapter.gauge in gauge and "since the bug went on" in gauge
                if i + 1 < len(CHAPTERS):
                    await pilot.press("n")
            observed = [m.chapter.name for m in app.messages if isinstance(m, TourPanel.ChapterObserved)]
            assert observed == list(chapter_names())
            changed = [m.chapter.name for m in app.messages if isinstance(m, TourPanel.ChapterChanged)]
            assert changed == list(chapter_names())  # mount announces the first one
            assert control.status().scenarios == frozenset()
            app.workers.cancel_group(app, "sampler")

    asyncio.run(run())


def test_navigation_list_watch_and_leaving_turns_the_bug_off(engine):
    pid = engine()
    control = EngineControl(pid)

    async def run() -> None:
        app = TourHost(pid, start="overflow")
        async with app.run_test(size=(80, 24)) as pilot:
            panel = app.query_one(TourPanel)
            assert panel.state.chapter.name == "overflow"
            body = str(panel.query_one("#tour-body", Static).render())
            assert "dst[i] = src[i];" in body and "hftmem_last_order.price" in body
            await pilot.press("w")
            await pilot.pause()
            assert [m.target for m in app.messages if isinstance(m, TourPanel.WatchRequested)] == ["hftmem_last_order.price"]
            await pilot.press("b")
            await wait_for_pilot(pilot, lambda: "overflow" in control.status().scenarios, 3)
            await pilot.press("p")  # leaving with the bug on switches it off
            await wait_for_pilot(pilot, lambda: "overflow" not in control.status().scenarios, 3)
            assert panel.state.chapter.name == "use-after-free" and not panel.state.bug_on
            await pilot.press("c")
            await pilot.pause()
            assert isinstance(app.screen, ChapterList)
            options = app.screen.query_one(OptionList)
            assert options.get_option_at_index(0).prompt.startswith("✓")  # leak: observed in an earlier run
            await pilot.press("end", "enter")
            await pilot.pause()
            assert panel.state.chapter.name == "pool-exhaustion"
            await pilot.press("n")  # already the last chapter: stays
            assert panel.state.chapter.name == "pool-exhaustion"
            await pilot.press("f")  # nothing to fix: a notice, no request
            await pilot.pause()
            assert not [m for m in app.messages if isinstance(m, TourPanel.ScenarioRequested)
                        and m.scenario == "pool-exhaustion"]
            app.workers.cancel_group(app, "sampler")

    asyncio.run(run())
