"""``hftmem demo``: the live TUI on a demo engine we start, with the tour panel docked beside the panes.

The engine is ours: started from the main thread with PR_SET_PDEATHSIG (the kernel kills it if
hftmem is SIGKILLed) and stopped in a ``finally`` on every other exit path. Scenario switches,
progress saves and watchpoints run in worker threads, never in the message loop.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.binding import Binding
from textual.worker import get_current_worker

from hftmem_tui.demo.chapters import Chapter, TourSample, chapter_names
from hftmem_tui.demo.tour_state import TourProgress
from hftmem_tui.demo.script import stop_engine
from hftmem_tui.sources.engine import start_engine
from hftmem_tui.errors import SourceError
from hftmem_tui.feeds.sampler import LiveSampler
from hftmem_tui.services import LiveServices, TargetServices
from hftmem_tui.ui import app as ui_app
from hftmem_tui.ui.app import HftmemApp
from hftmem_tui.ui.mappings_pane import MappingTable
from hftmem_tui.ui.memory_pane import MemoryPanel
from hftmem_tui.ui.tour_panel import TourPanel
from hftmem_tui.sources.shutdown import unwind_on_hangup
from hftmem_tui.ui.safe import notify_plain

# 0.5 s: the demo engine is small (a sample costs ~2 ms), and a chapter's effect shows in seconds.
DEFAULT_REFRESH_S = 0.5
SMAPS_EVERY = 4  # the growing mapping of the leak and fragmentation chapters, every 2 s
WATCH_TIMEOUT_S = 5.0


def _ui_css_paths() -> list[Path]:
    # A relative CSS_PATH resolves against the subclass's file: name the app's own sheet absolutely.
    paths = HftmemApp.CSS_PATH
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths or [])
    base = Path(ui_app.__file__).parent
    return [p if Path(p).is_absolute() else base / p for p in paths]


class TourApp(HftmemApp):
    """HftmemApp + the TourPanel: chapter changes move the panes, the panel's requests reach the engine
    (through ``services``: its control socket, its watchpoints; a recording's services refuse them)."""

    CSS_PATH = _ui_css_paths()
    CSS = """
    /* Beside the panes, 40 columns: the panes keep 80 (their widest lines) at 120 columns. Below
       that the panel goes under the panes, full width, so no pane loses columns. */
    #tour { dock: right; width: 40; }
    Screen.-narrow #tour { dock: bottom; width: 1fr; height: 35%; min-height: 7; }
    .tour-highlight { background: $warning 25%; }
    """
    HELP_SECTION = "Tour"
    HELP_HEADLINE = "hftmem demo — the guided tour on a demo engine hftmem started (and stops on quit)"
    HELP_NOTE = "a focused pane's own keys win: in Memory b w f are formats and follow"
    BINDINGS = [  # reach the tour from any pane; a focused pane's own keys win (memory's b/w/f)
        # Shown in the footer by the panel itself when it has focus; with a pane focused the footer
        # has the pane's keys and "t tour" (it fits 80 columns), the help lists them all.
        Binding("n", "tour('next')", "next chapter", show=False),
        Binding("p", "tour('previous')", "previous", show=False),
        Binding("c", "tour('chapters')", "chapters", show=False),
        Binding("b", "tour('toggle_bug')", "bug on/off", show=False),
        Binding("f", "tour('fix')", "fix", show=False),
        Binding("w", "tour('watch')", "watch", show=False),
        Binding("t", "focus_tour", "tour"),
    ]

    def __init__(self, feed, *, services: TargetServices, start: str | None = None,
                 progress_path: Path | None = None, refresh_s: float = DEFAULT_REFRESH_S, **kw) -> None:
        super().__init__(feed, services=services, refresh_s=refresh_s, **kw)
        self.progress_path = progress_path
        self.progress = TourProgress.load(progress_path, chapter_names())
        self.start_chapter = start or self.progress.current
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._pending_highlight: Chapter | None = None
        self.watch_results: list[list[str]] = []
        self._watch = None  # the FirstHitWatch in flight, closed on quit and on chapter change
        self._panel: TourPanel | None = None
        self._refocus_tour = False

    @property
    def tour(self) -> TourPanel:
        # Held, not queried: App.query_one searches the screen on top (a modal hides the panel).
        assert self._panel is not None, "the tour panel is mounted in on_mount"
        return self._panel

    # Textual calls the handler of every class in the MRO (this one first): no super() calls in on_*.
    async def on_mount(self) -> None:
        self._job_loop()
        panel = self._panel = TourPanel(start=self.start_chapter, observed=dict(self.progress.observed), id="tour")
        await self.query_one("#main").mount(panel, before=0)
        panel.focus()

    def apply_sample(self, sample) -> None:
        if self._panel is None or not self.screen_stack or not self.screen_stack[0].query("#target-header"):
            return  # not mounted yet, or tearing down: a sample still in the queue has nowhere to go
        super().apply_sample(sample)
        self.tour.show_sample(TourSample.from_live(sample))
        if self._pending_highlight is not None:
            self._highlight(self._pending_highlight)

    def run_exit_hooks(self) -> None:
        self._jobs.put(None)
        self._stop_watch()  # its thread must not hold the exit for its timeout
        super().run_exit_hooks()

    def _stop_watch(self) -> None:
        w = self._watch
        if w is not None:
            w.close()  # idempotent, safe from another thread: hits() returns

    # ------------------------------------------------------------------ keys

    def action_tour(self, action: str) -> None:
        getattr(self.tour, f"action_{action}")()

    def action_focus_tour(self) -> None:
        self.tour.focus()

    # ------------------------------------------------------------------ the panel's requests

    def on_tour_panel_scenario_requested(self, m: TourPanel.ScenarioRequested) -> None:
        def switch() -> None:
            try:
                self.services.engine_control().set_scenario(m.scenario, m.on)
            except SourceError as e:
                self.call_from_thread(notify_plain, self, str(e), title="scenario", severity="error")

        self._jobs.put(switch)

    def on_tour_panel_chapter_changed(self, m: TourPanel.ChapterChanged) -> None:
        chapter = m.chapter
        self._stop_watch()
        if chapter.pane in self.pane_ids and chapter.pane != self.active_pane:
            self._refocus_tour = True  # the pane takes focus when shown: the tour keys must keep working
            self.show_pane(chapter.pane)
        for w in self.query(".tour-highlight"):
            w.remove_class("tour-highlight")
        self._highlight(chapter)
        self.progress.current = chapter.name
        self._save_progress()

    def on_tabbed_content_tab_activated(self, event) -> None:
        if self._refocus_tour and self._panel is not None:
            self._refocus_tour = False
            self.call_after_refresh(self._panel.focus)  # after HftmemApp's handler focused the pane

    def on_tour_panel_chapter_observed(self, m: TourPanel.ChapterObserved) -> None:
        self.progress.observed[m.chapter.name] = m.summary
        self._save_progress()
        notify_plain(self, m.summary, title=f"observed: {m.chapter.name}", timeout=6)

    def on_tour_panel_watch_requested(self, m: TourPanel.WatchRequested) -> None:
        notify_plain(self, f"arming a zero-stop perf watchpoint on {m.target} (first write, {WATCH_TIMEOUT_S:.0f} s at most)",
                     title="watch", timeout=4)
        self._watch_once(m.target)

    # ------------------------------------------------------------------ helpers

    def _highlight(self, chapter: Chapter) -> None:
        """Point at the chapter's row or gauge in its pane; retried on the next sample until the row exists."""
        self._pending_highlight = None
        if chapter.pane not in self.pane_ids:
            return
        pane = self.pane_widget(chapter.pane)
        by_id = pane.query(f"#{chapter.highlight}") if chapter.highlight.replace("-", "").isalnum() else []
        if by_id:
            by_id.first().add_class("tour-highlight")
            return
        if isinstance(pane, MemoryPanel):
            pane.show(chapter.highlight.split(".")[0])
            return
        if isinstance(pane, MappingTable) and not pane.select(chapter.highlight):
            self._pending_highlight = chapter  # no such row yet (smaps not read yet)
        # Otherwise the tour panel's gauge line shows the chapter's counter, highlighted.

    def _save_progress(self) -> None:
        snapshot = TourProgress(self.progress.current, dict(self.progress.observed))
        self._jobs.put(lambda: snapshot.save(self.progress_path))

    @work(thread=True, exclusive=True, group="tour-jobs", exit_on_error=False)
    def _job_loop(self) -> None:
        """One thread runs the engine switches and file writes in order (an off must not overtake an on)."""
        worker = get_current_worker()
        while not worker.is_cancelled:  # cancelled at shutdown even when exit() was bypassed (tests)
            try:
                job = self._jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            if job is None:
                return
            try:
                job()
            except OSError as e:
                self.call_from_thread(self.notify, f"could not save the tour's progress: {e}", severity="warning")

    @work(thread=True, exclusive=True, group="tour-watch", exit_on_error=False)
    def _watch_once(self, target: str) -> None:
        try:
            watch = self.services.first_hit_watch(target)
        except SourceError as e:  # a recording: nothing to watch
            lines = [f"watch {target}: {e}"]
        else:
            self._watch = watch  # closed by _stop_watch on quit and on chapter change
            try:
                lines = watch.run(WATCH_TIMEOUT_S)
            finally:
                self._watch = None
        if self._hooks_ran:
            return
        self.watch_results.append(lines)
        self.call_from_thread(self.tour.show_watch_result, lines)

def run_tour(*, start: str | None = None, refresh_s: float = DEFAULT_REFRESH_S, progress_path: Path | None = None,
             binary: Path | None = None) -> int:
    """Start a demo engine, run the TUI with the tour on it, stop the engine on every way out.

    Raises SourceError (engine cannot be built or started, stats block unreadable) before the
    terminal is touched.
    """
    assert threading.current_thread() is threading.main_thread(), "PR_SET_PDEATHSIG follows the starting thread"
    with unwind_on_hangup():  # until the app installs its own SIGTERM/SIGHUP handlers
        proc = start_engine(die_with_parent=True, binary=binary)
        app: TourApp | None = None
        sampler: LiveSampler | None = None
        try:
            sampler = LiveSampler(proc.pid, interval_s=refresh_s, smaps_every=SMAPS_EVERY)
            info = sampler.start()  # main thread: perf dies with us too
            app = TourApp(sampler, services=LiveServices(info), start=start, progress_path=progress_path,
                          refresh_s=refresh_s)
            app.run()
        finally:
            if app is not None:
                app.run_exit_hooks()  # idempotent; closes the sampler
            elif sampler is not None:
                sampler.close()
            stop_engine(proc)
    return int(app.return_code or 0) if app is not None else 1
