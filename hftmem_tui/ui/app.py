"""`hftmem attach PID`: the live TUI. One sampler thread, panes in tabs, nothing that stops the engine.

Data flow: a thread worker calls ``feed.sample()`` every ``refresh_s`` and posts SampleReady;
the app folds it into a History (model/history.py) and hands (sample, history) to the pane
on screen and the header. Panes off screen are brought up to date when they are shown, so a
tick costs the drawing of one pane. The readiness audit runs in its own worker every few
seconds (it reads smaps_rollup and numa_maps: page-table walks, not for every tick).

The app never reaches the target itself: it is handed the target's services (services.py), live
or recorded, and hands each pane its own (the memory reader, the watch controller, the
allocation probes); on a recording each pane shows the services' refusal instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from textual import work
from textual.app import App, ComposeResult, ScreenStackError, SystemCommand
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Footer, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from hftmem_tui.model.audit import evaluate
from hftmem_tui.feeds.feed import FeedEnded, SampleFeed
from hftmem_tui.model.history import History
from hftmem_tui.errors import SourceError
from hftmem_tui.sources.readiness import HistorySample
from hftmem_tui.sources.shutdown import HANGUP_SIGNALS, SignalHandlers, exit_watchdog
from hftmem_tui.feeds.sampler import ProcessReplaced, TargetGone
from hftmem_tui.services import NotLive, TargetServices, offered
from hftmem_tui.ui.pools_pane import AllocatorGauges
from hftmem_tui.ui.alloc_calls_pane import AllocsPane
from hftmem_tui.ui.audit_pane import AuditPanel
from hftmem_tui.ui.cost import InspectorCost
from hftmem_tui.ui.graph import GRAPH_STYLES
from hftmem_tui.ui.header import OBSERVING, TargetHeader
from hftmem_tui.ui.memory_pane import MemoryPanel
from hftmem_tui.ui.latency_pane import LatencyHistory
from hftmem_tui.ui.mappings_pane import MappingTable
from hftmem_tui.ui.messages import AuditChecked, SampleFailed, SampleReady, TargetExited
from hftmem_tui.ui.overview_pane import OverviewPane
from hftmem_tui.ui.perf_pane import PerfCounters
from hftmem_tui.ui.watch_pane import WatchPane
from hftmem_tui.ui.safe import notify_plain, plain

PANES = (("overview", "Overview"), ("mappings", "Mappings"), ("perf", "Perf"), ("allocators", "Allocators"),
         ("latency", "Latency"), ("memory", "Memory"), ("audit", "Audit"), ("watch", "Watch"), ("allocs", "Allocs"))
MIN_SIZE = (60, 16)  # below this the panes cannot say anything useful: a notice instead
AUDIT_EVERY_S = 5.0
EXIT_GRACE_S = 5.0  # after SIGTERM/SIGHUP, how long a clean shutdown may take before a hard exit
# The widget that takes the keys when a pane is shown (its bindings then show in the footer).
FOCUS = {"mappings": "#mappings-table", "memory": "#hex-body", "audit": "#audit-table", "watch": "#watch-table",
         "allocs": "#allocs-table"}

HELP = """\
[b]hftmem attach[/b] — zero-stop view of one process (no ptrace, no signals, no writes)

[b]Panes[/b]     1 overview  2 mappings  3 perf  4 allocators  5 latency  6 memory  7 audit  8 watch  9 allocs
          tab / shift+tab also move between panes and widgets
[b]Mappings[/b]  s next sort column   r reverse   / filter by name   esc clear filter
          (click a column header to sort by it; growing rows are yellow with ▲)
[b]Memory[/b]    / or : address, symbol or symbol.field   b w g a  bytes/words/giants/ascii
          pgup pgdn page   arrows cursor   f follow pointer   u back
[b]Audit[/b]     a re-run the readiness audit now (it also re-runs every few seconds)
[b]Watch[/b]     / then SYMBOL[.field] or ADDR[:LEN], enter arms (perf: zero-stop)   ctrl+g perf/gdb
          ctrl+t write/rw   d disarm (gdb asks first: it pauses the engine; last disarm detaches)
[b]Allocs[/b]    s start/stop uprobes (cost per call shown first)   h mark thread hot   b busiest hot
[b]Anywhere[/b]  ? this help   ctrl+p command palette   G braille/block graphs   q or ctrl+c quit

Quitting never leaves the target stopped or traced.
[dim]Press escape or ? to close.[/dim]"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help-text")


class HftmemApp(App):
    """The TUI on one feed (a LiveSampler, or a recorded feed in tests and replay) and its target's
    ``services`` (LiveServices, or RecordedServices on a recording): who the target is, and
    everything the panes may ask of it."""

    CSS_PATH = "app.tcss"
    TITLE = "hftmem"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        Binding("question_mark", "help", "help"),
        Binding("G", "toggle_graph", "graph style", show=False),
        *[Binding(str(n), f"show_index({n - 1})", PANES[n - 1][1] if n <= len(PANES) else f"pane {n}",
                  show=n <= 3) for n in range(1, 10)],
        Binding("a", "audit_now", "audit", show=False),
    ]

    def __init__(self, feed: SampleFeed, *, services: TargetServices, refresh_s: float = 1.0,
                 graph_style: str = "braille", allocators=None, sampling: bool = True) -> None:
        super().__init__()
        if graph_style not in GRAPH_STYLES:
            raise ValueError(f"graph style must be one of {', '.join(GRAPH_STYLES)}")
        if refresh_s <= 0:
            raise ValueError("refresh must be positive")
        self.feed = feed
        self.refresh_s = refresh_s
        self.graph_style = graph_style
        self.allocators = allocators  # the specs the feed reads (shown in notes); the feed does the reading
        self.services = services
        self.info = services.target
        self.sampling = sampling
        self.read_facts = offered(services.facts_reader)  # the audit's facts, or the recording's refusal
        self.history = History()
        self.last_sample = None
        self.target_gone: str | None = None
        self.samples_seen = 0
        self.audit_runs = 0
        self._exit_hooks: list[Callable[[], None]] = []
        self._hooks_ran = False
        self._stop = threading.Event()
        self._extra_panes: list[str] = []
        self._audit_history: list[HistorySample] = []
        self._audit_busy = False
        self._signal_handlers: SignalHandlers | None = None
        self._shown_seq: dict[str, int] = {}
        self._notes_seen: set[str] = set()

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield TargetHeader(self.info, refresh_s=self.refresh_s, live=self.feed.live, id="target-header")
        yield Static("", id="banner")
        with Vertical(id="main"):
            with TabbedContent(initial="overview", id="panes"):
                with TabPane("1 Overview", id="overview"):
                    yield OverviewPane(graph_style=self.graph_style, refresh_s=self.refresh_s, id="overview-view")
                with TabPane("2 Mappings", id="mappings"):
                    yield MappingTable(id="mappings-view")
                with TabPane("3 Perf", id="perf"):
                    yield PerfCounters(id="perf-view")
                with TabPane("4 Allocators", id="allocators"):
                    yield AllocatorGauges(id="allocators-view")
                with TabPane("5 Latency", id="latency"):
                    yield LatencyHistory(graph_style=self.graph_style, id="latency-view")
                with TabPane("6 Memory", id="memory"):
                    reader = offered(self.services.memory_reader)
                    if isinstance(reader, NotLive):
                        yield Static(f"memory: {reader}", id="memory-view")
                    else:
                        yield MemoryPanel(reader, id="memory-view")
                with TabPane("7 Audit", id="audit"):
                    yield AuditPanel(id="audit-view")
                with TabPane("8 Watch", id="watch"):
                    yield WatchPane(offered(self.services.watch_controller), id="watch-view")
                with TabPane("9 Allocs", id="allocs"):
                    yield AllocsPane(offered(self.services.alloc_probes), id="allocs-view")
        self.cost_line = InspectorCost(id="inspector-cost")
        yield self.cost_line
        yield Static(f"terminal too small: hftmem needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]}", id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#banner", Static).display = False
        self.cost_line.display = self.feed.live  # a recording's cost is not ours
        notes = list(getattr(self.feed, "notes", []) or [])
        for n in notes:
            if n.startswith("perf:"):
                self.query_one(PerfCounters).note = n
            if n.startswith("engine:") or n.startswith("allocator"):
                self.query_one(AllocatorGauges).note = n
        if notes:
            notify_plain(self, "\n".join(notes), title="started with notes", severity="warning", timeout=8)
        self._check_size()
        self._install_signal_handlers()
        if isinstance(self.read_facts, NotLive):
            self.query_one(AuditPanel).query_one("#audit-summary", Static).update(
                f"readiness audit: {self.read_facts}")
        if self.sampling:
            self._sample_loop()
            if not isinstance(self.read_facts, NotLive):
                self.set_interval(AUDIT_EVERY_S, self.action_audit_now)
                self.call_after_refresh(self.action_audit_now)

    def on_resize(self, event) -> None:
        self._check_size(event.size)

    def _check_size(self, size=None) -> None:
        w, h = size or self.size
        small = w < MIN_SIZE[0] or h < MIN_SIZE[1]
        was = self.screen.has_class("too-small")
        self.screen.set_class(small, "too-small")
        if was and not small:
            self._shown_seq.clear()  # panes skipped updates while hidden
            self._update_pane(self.active_pane)

    # ------------------------------------------------------------------ panes
    @property
    def pane_ids(self) -> list[str]:
        return [p for p, _ in PANES] + self._extra_panes

    def pane_widget(self, pane_id: str) -> Widget:
        """The widget inside the pane ``pane_id`` (the one that gets show_sample)."""
        return self.query_one(f"#{pane_id}", TabPane).children[0]

    async def add_pane(self, pane_id: str, title: str, widget: Widget) -> None:
        """Add a pane (the watch pane, the tour) after the built-in ones; key 8, 9 select it."""
        n = len(self.pane_ids) + 1
        label = f"{n} {title}" if n <= 9 else title
        await self.query_one(TabbedContent).add_pane(TabPane(label, widget, id=pane_id))
        self._extra_panes.append(pane_id)
        if self.last_sample is not None and hasattr(widget, "show_sample"):
            widget.show_sample(self.last_sample, self.history)

    def action_show_index(self, index: int) -> None:
        ids = self.pane_ids
        if 0 <= index < len(ids):
            self.show_pane(ids[index])

    def show_pane(self, pane_id: str) -> None:
        self.query_one(TabbedContent).active = pane_id

    @property
    def active_pane(self) -> str:
        return self.query_one(TabbedContent).active

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._update_pane(event.pane.id or "")
        target = FOCUS.get(event.pane.id or "")
        if not target or event.pane.id != self.active_pane:
            return  # a stale activation: the user has moved on
        focused = self.focused
        if focused is not None and (focused is event.pane or event.pane in focused.ancestors):
            return
        for widget in event.pane.query(target):
            # Synchronously: Widget.focus() is deferred, and a deferred focus inside another
            # pane would switch the tabs back to it (TabPane.Focused), then the other way again.
            self.screen.set_focus(widget)
        if event.pane.id == "audit" and not self.audit_runs:
            self.action_audit_now()

    def _update_pane(self, pane_id: str) -> None:
        s = self.last_sample
        if s is None or self._shown_seq.get(pane_id) == s.seq:
            return
        try:
            widget = self.pane_widget(pane_id)
        except NoMatches:  # the app is shutting down: its panes are gone
            return
        if hasattr(widget, "show_sample"):
            widget.show_sample(s, self.history)
            self._shown_seq[pane_id] = s.seq

    # ------------------------------------------------------------------ sampling
    @work(thread=True, exclusive=True, group="sampler", exit_on_error=False)
    def _sample_loop(self) -> None:
        worker = get_current_worker()
        deadline = time.monotonic()
        while not worker.is_cancelled and not self._stop.is_set():
            try:
                sample = self.feed.sample()
            except ProcessReplaced as e:  # its pid names another process now: say that, not "exited"
                self.post_message(TargetExited(f"{e} — showing the last data of the one followed"))
                return
            except TargetGone as e:
                self.post_message(TargetExited(f"process {self.info.pid} exited ({e}) — showing the last data"))
                return
            except FeedEnded as e:
                self.post_message(TargetExited(f"{e} — showing the last data"))
                return
            except SourceError as e:
                self.post_message(SampleFailed(str(e)))
            except Exception as e:  # noqa: BLE001 - a bug must show on screen, not kill the thread silently
                self.post_message(SampleFailed(f"sampler stopped: {type(e).__name__}: {e}"))
                return
            else:
                self.post_message(SampleReady(sample))
            deadline += self.refresh_s
            self._stop.wait(max(0.0, deadline - time.monotonic()))

    def apply_sample(self, sample) -> None:
        """Fold one sample into the history and redraw the header and the pane on screen."""
        self.history.add(sample)
        self.last_sample = sample
        self.samples_seen += 1
        self._audit_history.append(HistorySample(sample.time, sample.status.vm_rss_kb, sample.stat.majflt))
        self.cost_line.add_sample(sample)
        del self._audit_history[:-600]
        stack = self.screen_stack
        headers = stack[-1].query(TargetHeader) if len(stack) == 1 else ()
        if not headers:
            return  # help or another modal is up (or the app is closing): the data is kept, the next sample draws it
        headers.first().show_sample(sample)
        if self.screen.has_class("too-small"):
            return
        self._update_pane(self.active_pane)
        memory = self.pane_widget("memory") if self.active_pane == "memory" else None
        if isinstance(memory, MemoryPanel):
            memory.refresh_memory()
        for note in sample.notes:
            if note not in self._notes_seen:  # a failing read repeats its note every sample: say it once
                self._notes_seen.add(note)
                notify_plain(self, note, severity="warning", timeout=5)

    def on_sample_ready(self, message: SampleReady) -> None:
        if self.target_gone is not None or self._hooks_ran:
            return
        try:
            if not self.screen.query(TargetHeader):  # a modal (help) is on top: it has no header
                self.screen_stack[0].query_one(TargetHeader)
        except (ScreenStackError, NoMatches):  # shutting down: the screens are gone
            return
        try:
            self.apply_sample(message.sample)
        except NoMatches:  # the widgets went away between the check and the drawing (teardown)
            return

    def on_sample_failed(self, message: SampleFailed) -> None:
        notify_plain(self, message.error, title="sample failed", severity="warning", timeout=5)

    def on_target_exited(self, message: TargetExited) -> None:
        self.target_gone = message.reason
        banner = self.query_one("#banner", Static)
        banner.update(plain(message.reason, "bold white on red"))
        banner.display = True
        self.query_one(TargetHeader).set_ended("target gone" if self.feed.live else "replay ended")
        self.feed.close()

    # ------------------------------------------------------------------ audit
    def action_audit_now(self) -> None:
        if isinstance(self.read_facts, NotLive) or self.target_gone or self._audit_busy:
            return
        if self.audit_runs and self.active_pane != "audit":
            return  # off screen: the next visit to the pane runs it
        self._audit_busy = True
        self._run_audit(tuple(self._audit_history))

    @work(thread=True, exclusive=True, group="audit", exit_on_error=False)
    def _run_audit(self, history: tuple[HistorySample, ...]) -> None:
        try:
            checks = evaluate(self.read_facts(history))
        except SourceError as e:
            self.post_message(AuditChecked((), str(e)))
            return
        self.post_message(AuditChecked(checks))

    def on_audit_checked(self, message: AuditChecked) -> None:
        self._audit_busy = False
        self.audit_runs += 1
        if message.error:
            self.query_one(AuditPanel).query_one("#audit-summary", Static).update(
                plain(f"readiness audit failed: {message.error}", "bold red"))
            return
        self.query_one(AuditPanel).update_checks(message.checks)

    # ------------------------------------------------------------------ actions
    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        else:
            self.push_screen(HelpScreen())

    def action_toggle_graph(self) -> None:
        self.set_graph_style("block" if self.graph_style == "braille" else "braille")

    def set_graph_style(self, style: str) -> None:
        self.graph_style = style
        self.query_one(OverviewPane).set_graph_style(style)
        self.query_one(LatencyHistory).set_graph_style(style)
        self._shown_seq.clear()
        self._update_pane(self.active_pane)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for i, pane_id in enumerate(self.pane_ids):
            yield SystemCommand(f"Show {pane_id}", f"switch to the {pane_id} pane (key {i + 1})",
                                lambda p=pane_id: self.show_pane(p))
        yield SystemCommand("Graph style: braille", "draw graphs with braille dots", lambda: self.set_graph_style("braille"))
        yield SystemCommand("Graph style: block", "draw graphs with block characters (fonts without braille)",
                            lambda: self.set_graph_style("block"))
        yield SystemCommand("Run the readiness audit", "re-read the audit facts now", self.action_audit_now)
        yield SystemCommand("Help", "keys of every pane", self.action_help)

    # ------------------------------------------------------------------ attach state, exit
    def set_attach_state(self, text: str = OBSERVING) -> None:
        """What hftmem does to the target, in the header (watch sessions say when they ptrace)."""
        self.query_one(TargetHeader).set_attach_state(text)

    def add_exit_hook(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on every exit path (q, ctrl+c, SIGTERM, SIGHUP, a crash) before the terminal is restored."""
        self._exit_hooks.append(fn)

    def run_exit_hooks(self) -> None:
        """Stop sampling, close the feed and run the hooks, once; a failing hook does not stop the others."""
        if self._hooks_ran:
            return
        self._hooks_ran = True
        self._stop.set()
        for fn in reversed(self._exit_hooks):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - the next hook (a detach) must still run
                self.log.error(f"exit hook failed: {e}")
        try:
            self.feed.close()
        except Exception as e:  # noqa: BLE001
            self.log.error(f"closing the feed failed: {e}")
        self._restore_signal_handlers()

    def exit(self, *args, **kwargs) -> None:  # type: ignore[override]
        self.run_exit_hooks()
        super().exit(*args, **kwargs)

    def _fatal_error(self) -> None:
        self.run_exit_hooks()
        super()._fatal_error()

    def _install_signal_handlers(self) -> None:
        loop = self._loop
        if loop is None:
            return

        def handler(signum, frame) -> None:  # runs in the main thread between bytecodes: defer to the loop
            loop.call_soon_threadsafe(self.exit, None, 128 + signum)
            self._arm_exit_watchdog(128 + signum)

        self._signal_handlers = SignalHandlers(handler, HANGUP_SIGNALS)  # installs nothing off the main thread

    def _arm_exit_watchdog(self, code: int) -> None:
        """After SIGTERM/SIGHUP the terminal may be gone and a thread may never finish writing to
        it: if the process has not ended EXIT_GRACE_S later, run the hooks (a no-op if they ran)
        and end it. The target has been left alone by then: the hooks are what detach."""
        exit_watchdog(EXIT_GRACE_S, code, before=self.run_exit_hooks)

    def _restore_signal_handlers(self) -> None:
        if self._signal_handlers is not None:
            self._signal_handlers.restore()
