"""The allocs pane: per-thread allocator calls through uprobes, hot threads, and allocation alarms.

Opt-in: nothing is probed until the user presses ``s``, after the pane has shown what each probed
call costs the engine (measured on this machine by calibration.cost_per_call). The probes are
counting perf events per (thread, function), no ptrace; a thread marked hot (``h``, or ``b`` for
hftmem's suggestion of the busiest) that calls the allocator raises an alarm, and its first call
chains are sampled once. The probes are removed on every exit path (the app's exit hook; the
AllocProbes guardian covers a SIGKILL).
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Static

from hftmem_tui.model.allocalarm import AllocReport, build_report, cpu_fractions, suggest_hot, window
from hftmem_tui.model.observecost import ArmedEvents
from hftmem_tui.errors import SourceError
from hftmem_tui.probes import ALLOC_FUNCTIONS, Offender
from hftmem_tui.services import NotLive
from hftmem_tui.textsafe import visible
from hftmem_tui.ui.safe import cell, notify_plain

if TYPE_CHECKING:
    from hftmem_tui.services import AllocProbeControl

COUNT_EVERY_S = 1.0


class AllocsPane(Vertical):
    """Allocator calls per thread and second; alarms for hot threads that allocate.

    ``probes``: the target's AllocProbeControl (from its services), or on a recording the
    services' refusal (NotLive), shown in the pane's place.
    """

    BINDINGS = [
        Binding("s", "toggle_probes", "start/stop probes"),
        Binding("h", "toggle_hot", "mark hot"),
        Binding("b", "accept_suggestion", "hot = busiest"),
    ]

    class Checked(Message):
        """Whether uprobes are possible here, and what a probed call costs (measured)."""

        def __init__(self, cost_s: float | None, error: str | None) -> None:
            super().__init__()
            self.cost_s, self.error = cost_s, error

    class Started(Message):
        def __init__(self, notes: tuple[str, ...], where: str, events: int) -> None:
            super().__init__()
            self.notes, self.where, self.events = notes, where, events

    class Counted(Message):
        def __init__(self, t: float, counts: dict, names: dict, cpu: dict, events: int) -> None:
            super().__init__()
            self.t, self.counts, self.names, self.cpu, self.events = t, counts, names, cpu, events

    class Stopped(Message):
        def __init__(self, reason: str | None) -> None:
            super().__init__()
            self.reason = reason

    class OffendersSampled(Message):
        def __init__(self, tid: int, offenders: list[Offender]) -> None:
            super().__init__()
            self.tid, self.offenders = tid, offenders

    def __init__(self, probes: AllocProbeControl | NotLive, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.live = not isinstance(probes, NotLive)
        self.probes = None if isinstance(probes, NotLive) else probes
        self.cost_s: float | None = None
        self.unavailable: str | None = str(probes) if isinstance(probes, NotLive) else None
        self.checked = False
        self.running = False
        self.hot: set[int] = set()
        self.suggested: list[int] = []
        self.report: AllocReport | None = None
        self.offenders: dict[int, list[Offender]] = {}
        self.events = 0
        self.where = ""
        self.notes: tuple[str, ...] = ()
        self._prev: tuple[float, dict, dict] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._want_chains: set[int] = set()
        self._start_pending = False
        self._lock = threading.Lock()
        self._clk = os.sysconf("SC_CLK_TCK")

    def compose(self):
        yield Static("", id="allocs-intro")
        yield Static("", id="allocs-summary")
        yield DataTable(id="allocs-table", cursor_type="row")
        with VerticalScroll(id="allocs-alarm-box"):
            yield Static("", id="allocs-alarm")

    def on_mount(self) -> None:
        t = self.query_one("#allocs-table", DataTable)
        t.add_column("tid", key="tid")
        t.add_column("thread", key="thread")
        t.add_column("CPU", key="cpu")
        for f in ALLOC_FUNCTIONS:
            t.add_column(f"{f}/s", key=f)
        t.add_column("hot", key="hot")
        if self.live:
            self.app.add_exit_hook(self.shutdown)
        self._show_intro()

    # ------------------------------------------------------------------ the app calls this on the active pane
    def show_sample(self, sample, history) -> None:
        if self.live and not self.checked:
            self.checked = True  # measured the first time the pane is shown, not at every attach
            threading.Thread(target=self._check, daemon=True, name="allocs-check").start()

    def _check(self) -> None:
        try:
            cost = self.probes.check()
        except SourceError as e:
            self.post_message(self.Checked(None, str(e)))
            return
        self.post_message(self.Checked(cost, None))

    # ------------------------------------------------------------------ actions
    def action_toggle_probes(self) -> None:
        if self.unavailable:
            notify_plain(self.app, f"allocation probes: {self.unavailable}", severity="warning", timeout=6)
            return
        if self.running:
            self.stop()
            return
        if self.cost_s is None:  # the cost is said first: start once it is measured
            self._start_pending = True
            self.show_sample(None, None)
            self._show_intro("measuring the cost of a probed call first…")
            return
        self.start()

    def start(self) -> None:
        """Put the uprobes on the target (in a thread) and count every second."""
        if self.running or self.unavailable:
            return
        self.running = True
        self._stop.clear()
        self._prev = None
        self.report = None
        self.offenders.clear()
        self._thread = threading.Thread(target=self._count_loop, daemon=True, name="allocs-probes")
        self._thread.start()
        self._show_intro("starting the probes…")

    def stop(self) -> None:
        self._stop.set()
        self.running = False
        self._show_intro("removing the probes…")

    def action_toggle_hot(self) -> None:
        t = self.query_one("#allocs-table", DataTable)
        if not t.row_count:
            return
        tid = int(t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value)
        self.hot.symmetric_difference_update({tid})
        self._redraw()

    def action_accept_suggestion(self) -> None:
        if not self.suggested:
            self.app.notify("no suggestion yet: the busiest threads show after a second of counting", timeout=4)
            return
        self.hot = set(self.suggested)
        self._redraw()

    def mark_hot(self, tids) -> None:
        self.hot = set(tids)
        self._redraw()

    def armed_events(self) -> tuple[ArmedEvents, ...]:
        if not self.running or self.report is None:
            return ()
        return (ArmedEvents("uprobes", self.events, self.report.calls_per_s, self.report.cost_fraction),)

    # ------------------------------------------------------------------ the probe thread
    def _count_loop(self) -> None:
        reason: str | None = None
        try:
            with self.probes.open() as probes:
                where = ", ".join(sorted({f"{s.where} ({os.path.basename(s.path)})" for s in probes.specs}))
                self.post_message(self.Started(tuple(probes.notes), where, probes.events_open))
                while not self._stop.is_set():
                    probes.refresh_threads()
                    self.post_message(self.Counted(time.monotonic(), probes.counts(), probes.thread_names,
                                                   self.probes.thread_cpu_ticks(), probes.events_open))
                    with self._lock:
                        wanted, self._want_chains = self._want_chains, set()
                    if wanted:
                        found = probes.sample_offenders(sorted(wanted))
                        for tid in wanted:
                            self.post_message(self.OffendersSampled(tid, [o for o in found if o.tid == tid]))
                    self._stop.wait(COUNT_EVERY_S)
        except SourceError as e:
            reason = str(e)
        except Exception as e:  # noqa: BLE001 - the probes are closed by the with; say what happened
            reason = f"allocation probes failed: {e}"
        self.post_message(self.Stopped(reason))

    def shutdown(self) -> None:
        """Exit hook: remove the probes before the terminal is restored (waits for the thread)."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=10.0)

    # ------------------------------------------------------------------ messages
    def on_allocs_pane_checked(self, m: Checked) -> None:
        self.cost_s = m.cost_s
        if m.error:
            self.unavailable = m.error
            self.running = False
        self._show_intro()
        if self._start_pending and not m.error:
            self._start_pending = False
            self.start()

    def on_allocs_pane_started(self, m: Started) -> None:
        self.notes, self.where, self.events = m.notes, m.where, m.events
        self._show_intro()

    def on_allocs_pane_counted(self, m: Counted) -> None:
        self.events = m.events
        if self._prev is None:
            self._prev = (m.t, m.counts, m.cpu)
            self._show_intro()
            return
        t0, c0, cpu0 = self._prev
        dt = m.t - t0
        if dt <= 0:
            return
        self._prev = (m.t, m.counts, m.cpu)
        cpu = cpu_fractions(cpu0, m.cpu, dt, self._clk)
        self.suggested = suggest_hot(cpu)
        self.report = build_report(window(c0, m.counts), m.names, dt, self.hot, cpu=cpu,
                                   cost_per_call_s=self.cost_s, notes=self.notes)
        with self._lock:
            for a in self.report.alarms:
                if a.tid not in self.offenders:
                    self.offenders[a.tid] = []
                    self._want_chains.add(a.tid)
        self._redraw()

    def on_allocs_pane_stopped(self, m: Stopped) -> None:
        self.running = False
        self._thread = None
        if m.reason:
            self.unavailable = m.reason if "root" in m.reason or "tracefs" in m.reason else None
            notify_plain(self.app, m.reason, title="allocation probes", severity="warning", timeout=8)
        self._show_intro(m.reason or "probes removed")

    def on_allocs_pane_offenders_sampled(self, m: OffendersSampled) -> None:
        self.offenders[m.tid] = m.offenders
        self._redraw()

    # ------------------------------------------------------------------ drawing
    def _show_intro(self, status: str | None = None) -> None:
        t = Text()
        if self.unavailable:
            t.append(f"allocation alarms: {visible(self.unavailable)}", style="bold yellow")
            self.query_one("#allocs-intro", Static).update(t)
            return
        cost = "measuring…" if self.cost_s is None else f"{self.cost_s * 1e6:.1f} us"
        if not self.checked:
            cost = "measured when you open this pane"
        if self.running:
            t.append("probes ON ", style="bold yellow")
            t.append(f"(uprobes on {visible(self.where or '…')}; no ptrace; {self.events} counting events) · ")
            t.append("s", style="bold")
            t.append(" remove them · ")
            t.append("h", style="bold")
            t.append(" mark the selected thread hot · ")
            t.append("b", style="bold")
            t.append(" mark the busiest threads hot")
        else:
            t.append("allocation alarms are off (opt-in). ", style="bold")
            t.append("s", style="bold")
            t.append(" puts uprobes on malloc, free, calloc, realloc and operator new/delete of the engine "
                     "(no ptrace). ")
        t.append(f"\nEach probed call costs the engine {cost} (measured on this machine)")
        if self.cost_s is not None:
            t.append(f": at 100,000 calls/s that is {self.cost_s * 1e5 * 100:.1f}% of a core")
        t.append(". Probes are removed on quit, even if hftmem is killed.")
        if status:
            t.append(f"\n{visible(status)}", style="dim")
        for n in self.notes:
            t.append(f"\nnote: {visible(n)}", style="dim")
        self.query_one("#allocs-intro", Static).update(t)

    def _redraw(self) -> None:
        r = self.report
        table = self.query_one("#allocs-table", DataTable)
        summary = self.query_one("#allocs-summary", Static)
        alarm_box = self.query_one("#allocs-alarm", Static)
        if r is None:
            return
        r = build_report({t.tid: t.calls for t in r.threads}, {t.tid: t.name for t in r.threads}, r.seconds,
                         self.hot, cpu={t.tid: t.cpu_fraction for t in r.threads if t.cpu_fraction is not None},
                         cost_per_call_s=r.cost_per_call_s, notes=r.notes)  # hot marks apply at once
        self.report = r
        seen = {str(k.value) for k in table.rows}
        keep = set()
        for th in r.threads:
            key = str(th.tid)
            keep.add(key)
            cells = (str(th.tid), cell(th.name), "?" if th.cpu_fraction is None else f"{th.cpu_fraction * 100:.0f}%",
                     *(f"{th.rate(f):,.0f}" for f in ALLOC_FUNCTIONS), "HOT" if th.hot else "")
            if key in seen:
                for col, value in zip(("tid", "thread", "cpu", *ALLOC_FUNCTIONS, "hot"), cells):
                    table.update_cell(key, col, value)
            else:
                table.add_row(*cells, key=key)
        for key in seen - keep:
            table.remove_row(key)
        s = Text(f"{r.calls_per_s:,.0f} probed calls/s over {r.seconds:.1f} s")
        if r.cost_fraction is not None:
            s.append(f" x {r.cost_per_call_s * 1e6:.1f} us = {r.cost_fraction * 100:.2f}% of a core for the engine")
        names = {t.tid: t.name for t in r.threads}
        if self.suggested and set(self.suggested) != self.hot:
            s.append(" · busiest threads: " + ", ".join(f"{t} {visible(names.get(t, '?'))}" for t in self.suggested)
                     + " (b marks them hot)", style="cyan")
        if not self.hot:
            s.append(" · no thread marked hot yet: no alarm", style="dim")
        summary.update(s)
        a = Text()
        for alarm in r.alarms:
            a.append(visible(str(alarm)) + "\n", style="bold white on red")
            chains = sorted(self.offenders.get(alarm.tid, []), key=lambda o: -o.count)
            if alarm.tid in self.offenders and not chains:
                a.append("  sampling the call chains of its next allocator calls…\n", style="dim")
            if chains:
                a.append("  first offenders (call chains sampled briefly on this thread):\n")
            for o in chains:
                a.append(f"    {visible(o.function)} x{o.count}\n", style="bold")
                for i, f in enumerate(o.frames[:10]):
                    a.append(f"      #{i} {visible(str(f))}\n")
        if not r.alarms and self.hot:
            a.append(f"no alarm: hot threads {', '.join(map(str, sorted(self.hot)))} made no allocator call "
                     f"in the last {r.seconds:.1f} s", style="green")
        alarm_box.update(a)
