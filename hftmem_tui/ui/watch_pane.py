"""The watch pane: hardware watchpoints from the TUI, zero-stop (perf) by default, gdb on request.

perf (sources/perfwatch.py) never stops the engine and never ptraces it. gdb "stop and inspect"
(sources/gdbsession.py) attaches with ptrace: the pane asks first (a modal saying it pauses the
engine), then shows the measured attach pause and the pause of every hit, and the header says
"ptrace-attached for N watchpoints" until the last gdb watchpoint is disarmed (that detaches).

Threads: resolving a target (gdb on the ELF file), arming, and every hit loop run off the message
loop and report back with messages; one thread owns the gdb session (GdbSession is not shared).
Every exit path (q, ctrl+c, SIGTERM, SIGHUP, a crash) disarms and detaches through the app's
exit hook before the terminal is restored.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static

from hftmem_tui.model.observecost import ArmedEvents
from hftmem_tui.errors import AccessDenied, NoSuchProcess, SourceError, ZombieProcess
from hftmem_tui.sources.exprguard import check_expression
from hftmem_tui.sources.gdb.session import DEFAULT_MAX_RATE as GDB_MAX_RATE
from hftmem_tui.sources.gdb.session import GdbSession
from hftmem_tui.sources.perf.breakpoints import DEFAULT_MAX_RATE as PERF_MAX_RATE
from hftmem_tui.sources.perf.breakpoints import HotField, PerfWatch, _value, check_perf_access, format_hit
from hftmem_tui.sources.watchpoint import (ACCESS_KINDS, DEBUG_REGISTERS, WatchHit, WatchSpec, check_budget, parse_target,
                                     resolve_target)
from hftmem_tui.ui.header import OBSERVING
from hftmem_tui.commands.watch import choose_backend

MAX_LOG = 200  # hits kept in the log table
RATE_WINDOW_S = 5.0
BATCH_S = 0.25
LOG_PER_FLUSH = 6  # rows added to the log per flush (FLUSH_S)
FLUSH_S = 1.0
LOG_PER_BATCH = 3  # rows added to the log per batch (<= 12/s): at 1,000 hits/s the log shows the latest, the count all


def _ms(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds * 1e3:.1f} ms"


def _where(hit: WatchHit) -> str:
    f = hit.location
    if f is None:
        return "??"
    name = _short(f.function) if f.function else f"{f.address:#x}"
    if f.function and f.offset is not None:
        name += f"+{f.offset:#x}"
    if f.file:
        name += f" {os.path.basename(f.file)}:{f.line}" if f.line else f" {os.path.basename(f.file)}"
    return name


def _short(function: str) -> str:
    """``engine::run_producer(engine::Config const&)`` -> ``engine::run_producer`` (the log is narrow)."""
    depth, out = 0, []
    for ch in function:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out) or function


@dataclass
class ArmedWatch:
    """One watchpoint the pane holds (UI thread state)."""

    wid: int
    spec: WatchSpec
    backend: str  # "perf" | "gdb"
    max_rate: float
    state: str = "arming"
    handle: PerfWatch | None = None
    hits: int = 0
    arrivals: deque = field(default_factory=deque)  # monotonic arrival times, last RATE_WINDOW_S
    pauses: list = field(default_factory=list)  # gdb: seconds each hit stopped the thread
    cost_per_hit_s: float | None = None  # perf: measured trap cost
    events: int = 0  # perf events open for it
    armed_at: float | None = None  # monotonic
    kernel_rate: float | None = None  # perf: hits/s from the kernel's count
    shown: tuple = ()  # the cells last drawn

    def rate(self, now: float) -> float:
        if self.kernel_rate is not None:
            return self.kernel_rate
        while self.arrivals and self.arrivals[0] < now - RATE_WINDOW_S:
            self.arrivals.popleft()
        span = RATE_WINDOW_S if self.armed_at is None else min(RATE_WINDOW_S, max(now - self.armed_at, 1.0))
        return len(self.arrivals) / span

    def cost_per_hit(self) -> float | None:
        if self.backend == "gdb":
            return sum(self.pauses) / len(self.pauses) if self.pauses else None
        return self.cost_per_hit_s


class ConfirmAttach(ModalScreen[bool]):
    """Ask before gdb attaches: ptrace pauses the engine."""

    BINDINGS = [Binding("y", "answer(True)", "attach gdb"), Binding("n,escape", "answer(False)", "cancel")]

    def __init__(self, spec: WatchSpec, attached: bool) -> None:
        super().__init__()
        self.spec = spec
        self.attached = attached

    def compose(self) -> ComposeResult:
        how = ("gdb is already attached: inserting it stops one idle thread for a moment" if self.attached else
               "gdb ATTACHES WITH PTRACE: attaching stops every thread of the engine briefly (it is measured "
               "and shown after), and the header says ptrace-attached until the last gdb watchpoint is disarmed")
        yield Static(Text.assemble(
            ("Stop and inspect: ", "bold"), f"{self.spec.label} ({self.spec.length} bytes at {self.spec.address:#x}, "
            f"{self.spec.access}) via gdb\n\n", (how, "bold yellow"), "\n\nEach hit stops the writing thread for a few "
            "milliseconds; above the rate limit the watchpoint is disarmed. The zero-stop perf backend never pauses "
            "the engine.\n\n", ("y", "bold"), " attach and arm   ", ("n / esc", "bold"), " cancel"), id="confirm-text")

    def action_answer(self, ok: bool) -> None:
        self.dismiss(ok)


class WatchPane(Vertical):
    """Arm/disarm hardware watchpoints on the target; a hits log with values, threads and call chains."""

    BINDINGS = [
        Binding("slash", "focus_target", "arm a watchpoint"),
        Binding("escape", "focus_table", "done typing", show=False),
        Binding("ctrl+g", "toggle_backend", "perf/gdb"),
        Binding("ctrl+t", "toggle_access", "write/rw"),
        Binding("d,delete", "disarm", "disarm"),
    ]

    class Resolved(Message):
        def __init__(self, wid: int, spec: WatchSpec | None, backend: str, error: str | None = None) -> None:
            super().__init__()
            self.wid, self.spec, self.backend, self.error = wid, spec, backend, error

    class Armed(Message):
        def __init__(self, wid: int, info: str, events: int = 0, cost_per_hit_s: float | None = None) -> None:
            super().__init__()
            self.wid, self.info, self.events, self.cost_per_hit_s = wid, info, events, cost_per_hit_s

    class HitsSeen(Message):
        """Hits of one watchpoint, batched (at most ~10 messages a second, whatever the hit rate)."""

        def __init__(self, wid: int, hits: list[WatchHit], counted: int | None = None,
                     rate_hz: float | None = None) -> None:
            super().__init__()
            self.wid, self.hits = wid, hits
            self.counted, self.rate_hz = counted, rate_hz  # perf: the kernel's count (lost samples included)

    class Disarmed(Message):
        """A watchpoint is gone: disarmed by the user (reason None), the guard, a failure or the target exiting."""

        def __init__(self, wid: int, reason: str | None) -> None:
            super().__init__()
            self.wid, self.reason = wid, reason

    class GdbChanged(Message):
        """gdb attached (``attach_pause_s``) or detached (``detached`` True, with the session's totals)."""

        def __init__(self, detached: bool, text: str) -> None:
            super().__init__()
            self.detached, self.text = detached, text

    def __init__(self, pid: int, *, live: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pid = pid
        self.live = live
        self.via: str | None = None  # None: perf when permitted, else gdb
        self.access = "write"
        self.watches: dict[int, ArmedWatch] = {}
        self.hit_log: dict[str, tuple[ArmedWatch, WatchHit]] = {}
        self.gdb_attached = False
        self.gdb_text = ""
        self._next_id = 1
        self._hits_seen = 0
        self._pending: list[tuple[ArmedWatch, WatchHit]] = []
        self._gdb_q: queue.Queue = queue.Queue()
        self._gdb_thread: threading.Thread | None = None
        self._perf_threads: list[threading.Thread] = []
        self._handles_lock = threading.Lock()
        self._shutting_down = False
        self.perf_ok: str | None = None  # who grants perf ("root"), None when not permitted
        self.perf_why = ""

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        if not self.live:
            yield Static("watchpoints: unavailable in a recording (they need a live process: "
                         "`hftmem attach PID`, or `hftmem watch PID SYMBOL` headless)", id="watch-unavailable")
            return
        yield Static(Text.assemble(("/", "bold"), " then SYMBOL[.field] or ADDR[:LEN], enter arms · ",
                                   ("ctrl+g", "bold"), " perf/gdb · ", ("ctrl+t", "bold"), " write/rw · ",
                                   ("d", "bold"), " disarm the selected watchpoint"), id="watch-help")
        with Horizontal(id="watch-form"):
            yield Input(placeholder="hftmem_engine_stats.ticks  or  0x7f00deadbee8:8", id="watch-target")
            yield Input(placeholder="max hits/s", id="watch-max-rate", restrict=r"[0-9.]*")
        yield Static("", id="watch-mode")
        yield Static("", id="watch-notice")
        yield DataTable(id="watch-table", cursor_type="row", zebra_stripes=False)
        yield DataTable(id="watch-hits", cursor_type="row")
        yield Static("", id="watch-backtrace")

    def on_mount(self) -> None:
        if not self.live:
            return
        t = self.query_one("#watch-table", DataTable)
        for key, label in (("n", "#"), ("target", "target"), ("backend", "backend"), ("access", "access"),
                           ("hits", "hits"), ("rate", "hits/s"), ("cost", "engine cost"), ("state", "state")):
            t.add_column(label, key=key)
        h = self.query_one("#watch-hits", DataTable)
        for key, label in (("time", "time"), ("tid", "thread"), ("target", "target"), ("value", "old -> new (perf: read after the write)"),
                           ("where", "location"), ("pause", "engine paused")):
            h.add_column(label, key=key)
        try:
            self.perf_ok = check_perf_access(self.pid)
        except AccessDenied as e:
            self.perf_ok, self.perf_why = None, str(e)
        self.app.add_exit_hook(self.shutdown)
        self.set_interval(FLUSH_S, self._refresh_rates)
        self._show_mode()

    # ------------------------------------------------------------------ public API (the tour calls arm)
    def arm(self, target_text: str, *, via: str | None = None, access: str = "write") -> int | None:
        """Check ``target_text`` and arm a watchpoint on it (perf unless ``via="gdb"`` or perf is not
        permitted; gdb asks first). Returns the watch id, or None when refused (the notice says why)."""
        if not self.live:
            self._notice("watchpoints: unavailable in a recording", error=True)
            return None
        if access not in ACCESS_KINDS or access == "read":
            self._notice(f"access must be write or rw, not {access!r} (x86 has no read-only breakpoints)", error=True)
            return None
        try:
            text = check_expression(target_text)  # before anything reaches a symbol lookup or a debugger
            parse_target(text)
            check_budget(self.registers_used())
            backend, note = choose_backend(self.pid, via or self.via)  # perf unless gdb asked or perf refused
            max_rate = self._max_rate(backend)
        except (SourceError, ValueError) as e:
            self._notice(f"refused: {e}", error=True)
            return None
        wid = self._next_id
        self._next_id += 1
        self.watches[wid] = ArmedWatch(wid, WatchSpec(1, 1, access, text), backend, max_rate, state="resolving")
        self._add_row(self.watches[wid])
        self._notice(f"resolving {text}…" + (f" ({note})" if note else ""))
        threading.Thread(target=self._resolve, args=(wid, text, access, backend), daemon=True,
                         name=f"watch-resolve-{wid}").start()
        return wid

    def disarm(self, wid: int) -> None:
        """Disarm one watchpoint (the last gdb one detaches gdb)."""
        w = self.watches.get(wid)
        if w is None or w.state in ("disarming", "disarmed"):
            return
        if w.backend == "gdb" and w.state in ("armed", "attaching", "arming"):
            w.state = "disarming"  # queued behind its arm request: the gdb thread disarms it (and maybe detaches)
            self._gdb_q.put(("disarm", wid, None))
        elif w.backend == "perf" and w.handle is not None:
            w.state = "disarming"
            handle = w.handle
            threading.Thread(target=handle.close, daemon=True).start()  # the hit loop then reports Disarmed
        else:
            w.state = "disarmed"  # still resolving or waiting for the user: the result is dropped
            self._remove(wid, "disarmed before it was armed")
        self._update_row(w)

    def registers_used(self) -> int:
        return sum(1 for w in self.watches.values() if w.state not in ("disarmed",))

    def armed_events(self) -> tuple[ArmedEvents, ...]:
        """What the armed watchpoints cost the engine, for the inspector's cost line."""
        now = time.monotonic()
        out = []
        for w in self.watches.values():
            if w.state != "armed":
                continue
            rate = w.rate(now)
            c = w.cost_per_hit()
            out.append(ArmedEvents(f"{w.backend} watch", w.events if w.backend == "perf" else 0,
                                   rate, None if c is None else rate * c))
        return tuple(out)

    # ------------------------------------------------------------------ actions
    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "watch-target":
            if self.arm(event.value, access=self.access) is not None:
                event.input.value = ""
                self.action_focus_table()
        else:
            self._show_mode()
            self.action_focus_table()

    def action_focus_target(self) -> None:
        self.query_one("#watch-target", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one("#watch-table", DataTable).focus()

    def action_toggle_backend(self) -> None:
        self.via = None if self.via == "gdb" else "gdb"
        self._show_mode()

    def action_toggle_access(self) -> None:
        self.access = "rw" if self.access == "write" else "write"
        self._show_mode()

    def action_disarm(self) -> None:
        t = self.query_one("#watch-table", DataTable)
        if not t.row_count:
            return
        key = t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value
        self.disarm(int(key))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "watch-hits" or event.row_key is None:
            return
        entry = self.hit_log.get(str(event.row_key.value))
        if entry is not None:
            self._show_backtrace(*entry)

    # ------------------------------------------------------------------ threads
    def _resolve(self, wid: int, text: str, access: str, backend: str) -> None:
        try:
            spec = resolve_target(self.pid, text, access)
        except SourceError as e:
            self.post_message(self.Resolved(wid, None, backend, str(e)))
            return
        self.post_message(self.Resolved(wid, spec, backend))

    def _perf_loop(self, wid: int, spec: WatchSpec, max_rate: float) -> None:
        try:
            w = PerfWatch(self.pid, spec, max_rate=max_rate)
        except SourceError as e:
            self.post_message(self.Disarmed(wid, f"not armed: {e}"))
            return
        with self._handles_lock:
            aw = self.watches.get(wid)
            if self._shutting_down or aw is None or aw.state == "disarmed":
                w.close()
                return
            aw.handle = w
        st = w.stats
        self.post_message(self.Armed(wid, f"perf on {st.armed_threads} threads, no ptrace (allowed: {w.granted_by})",
                                     len(getattr(w, "_fds", ())), st.cost_per_hit_s))
        reason: str | None = None
        try:
            last_post = 0.0
            while not w._closed:
                batch: list[WatchHit] = []
                end = time.monotonic() + BATCH_S
                for hit in w.hits(timeout=BATCH_S):  # a 1 kHz field must not flood the message loop
                    batch.append(hit)
                    if w._closed or time.monotonic() > end:
                        break
                now = time.monotonic()
                if batch or now - last_post >= 1.0:
                    st = w.stats
                    self.post_message(self.HitsSeen(wid, batch, st.counted, st.rate_hz))
                    last_post = now
                if not batch and getattr(w, "_reader_done", False):
                    break  # the target exited (or close()): no more hits
        except HotField as e:
            reason = str(e)
        except SourceError as e:
            reason = f"stopped: {e}"
        finally:
            closed = w._closed
            w.close()
        if reason is None and not closed:
            reason = f"the target exited or the watch ended ({w.stats.hits} hits)"
        self.post_message(self.Disarmed(wid, reason))

    def _gdb_loop(self) -> None:
        """Own the gdb session: arm/disarm requests from the queue, hits in between; detach when empty."""
        session = None
        wps: dict[int, object] = {}
        rates: dict[int, tuple[float, deque]] = {}

        def detach() -> None:
            nonlocal session
            if session is None:
                return
            s, session = session, None
            s.close()
            st = s.stats
            self.post_message(self.GdbChanged(True, (
                f"gdb detached (TracerPid 0): it paused the engine {_ms(st.total_pause_s)} in all — attach "
                f"{_ms(st.attach_pause_s)}, {len(st.hit_pauses_s)} hits {_ms(sum(st.hit_pauses_s))}, "
                f"detach {_ms(st.detach_pause_s)}")))

        try:
            while True:
                try:
                    cmd = self._gdb_q.get(timeout=0.0 if wps else 0.25)
                except queue.Empty:
                    cmd = None
                if cmd is not None:
                    kind, wid, arg = cmd
                    if kind == "close":
                        return
                    if kind == "arm":
                        spec, max_rate = arg
                        try:
                            if session is None:
                                session = GdbSession(self.pid)
                                session.attach()
                                self.post_message(self.GdbChanged(False, (
                                    f"gdb attached (ptrace, non-stop): attaching paused the engine "
                                    f"{_ms(session.attach_pause_s)}")))
                            wps[wid] = session.watch(spec)
                            rates[wid] = (max_rate, deque())
                            self.post_message(self.Armed(wid, "gdb (ptrace): each hit stops the writing thread"))
                        except SourceError as e:
                            self.post_message(self.Disarmed(wid, f"not armed: {e}"))
                            if not wps:
                                detach()
                    elif kind == "disarm":
                        wp = wps.pop(wid, None)
                        rates.pop(wid, None)
                        if wp is not None:
                            with contextlib.suppress(SourceError):
                                session.unwatch(wp)
                        self.post_message(self.Disarmed(wid, arg))
                        if not wps:
                            detach()
                    continue
                if session is None or not wps:
                    continue
                try:
                    hit = session.next_hit(0.1)
                except SourceError as e:  # the target exited, or gdb failed: every gdb watchpoint is gone
                    why = "stopped" if isinstance(e, (NoSuchProcess, ZombieProcess)) else "gdb failed"
                    for wid in list(wps):
                        self.post_message(self.Disarmed(wid, f"{why}: {e}"))
                    wps.clear()
                    detach()
                    continue
                if hit is None:
                    continue
                wid = next((k for k, wp in wps.items() if wp.spec == hit.spec), None)
                if wid is None:
                    continue
                self.post_message(self.HitsSeen(wid, [hit]))
                limit, recent = rates[wid]
                now = time.monotonic()
                recent.append(now)
                while recent and recent[0] < now - 1.0:
                    recent.popleft()
                if limit and len(recent) > limit:
                    self._gdb_q.put(("disarm", wid, (
                        f"disarmed {hit.spec.label}: hot field, more than {limit:,.0f} hits in the last second "
                        f"(each stops the engine's thread for {_ms(hit.pause_s)}); raise max hits/s or use perf")))
        except Exception as e:  # noqa: BLE001 - whatever failed, the finally detaches
            self.post_message(self.GdbChanged(False, f"gdb session failed: {e}"))
            for wid in list(wps):
                self.post_message(self.Disarmed(wid, f"gdb failed: {e}"))
        finally:
            detach()

    def shutdown(self) -> None:
        """Exit hook: disarm every watchpoint and detach gdb, waiting for it (the target must end untraced)."""
        with self._handles_lock:
            self._shutting_down = True
            handles = [w.handle for w in self.watches.values() if w.handle is not None]
        for h in handles:
            with contextlib.suppress(Exception):
                h.close()
        if self._gdb_thread is not None and self._gdb_thread.is_alive():
            self._gdb_q.put(("close", 0, None))
            self._gdb_thread.join(timeout=20.0)

    # ------------------------------------------------------------------ messages from the threads
    def on_watch_pane_resolved(self, m: Resolved) -> None:
        w = self.watches.get(m.wid)
        if w is None or w.state == "disarmed":
            return
        if m.error is not None:
            self._remove(m.wid, f"refused: {m.error}")
            return
        w.spec = m.spec
        self._update_row(w)
        if m.backend == "gdb":
            w.state = "confirm?"
            self._update_row(w)
            self.app.push_screen(ConfirmAttach(m.spec, self.gdb_attached), lambda ok, wid=m.wid: self._confirmed(wid, ok))
            return
        w.state = "arming"
        self._update_row(w)
        t = threading.Thread(target=self._perf_loop, args=(m.wid, m.spec, w.max_rate), daemon=True,
                             name=f"perfwatch-ui-{m.wid}")
        self._perf_threads.append(t)
        t.start()

    def _confirmed(self, wid: int, ok: bool | None) -> None:
        w = self.watches.get(wid)
        if w is None or w.state == "disarmed":
            return
        if not ok:
            self._remove(wid, f"cancelled: {w.spec.label} not armed (gdb not attached)")
            return
        w.state = "attaching" if not self.gdb_attached else "arming"
        self._update_row(w)
        if self._gdb_thread is None or not self._gdb_thread.is_alive():
            self._gdb_thread = threading.Thread(target=self._gdb_loop, daemon=True, name="watch-gdb")
            self._gdb_thread.start()
        self._gdb_q.put(("arm", wid, (w.spec, w.max_rate)))
        self.app.set_attach_state("ptrace-attaching gdb — the engine pauses briefly")

    def on_watch_pane_armed(self, m: Armed) -> None:
        w = self.watches.get(m.wid)
        if w is None:
            return
        w.armed_at = time.monotonic()
        if w.state == "disarming":  # gdb: disarmed while arming; its disarm request is queued behind
            return
        w.state = "armed"
        w.events, w.cost_per_hit_s = m.events, m.cost_per_hit_s
        self._update_row(w)
        self._notice(f"armed {w.spec.label} ({w.spec.length} bytes at {w.spec.address:#x}, {w.spec.access}): {m.info}")
        self._show_mode()

    def on_watch_pane_hits_seen(self, m: HitsSeen) -> None:
        w = self.watches.get(m.wid)
        if w is None:
            return
        now = time.monotonic()
        w.hits = m.counted if m.counted is not None else w.hits + len(m.hits)
        w.kernel_rate = m.rate_hz
        w.arrivals.extend([now] * len(m.hits))
        w.pauses.extend(h.pause_s for h in m.hits if h.pause_s is not None)
        self._pending.extend((w, hit) for hit in m.hits[-LOG_PER_BATCH:])
        del self._pending[:-LOG_PER_FLUSH]

    def _flush_log(self) -> None:
        """Add the hits seen since the last flush to the log: a redraw of the log per flush, not per hit
        (re-rendering the table is what costs the inspector CPU at high hit rates)."""
        if not self._pending:
            return
        table = self.query_one("#watch-hits", DataTable)
        follow = table.row_count == 0 or table.cursor_row == table.row_count - 1
        for w, hit in self._pending:
            self._log_hit(table, w, hit)
        self._pending.clear()
        while table.row_count > MAX_LOG:
            first = next(iter(table.rows))
            table.remove_row(first)
            self.hit_log.pop(str(first.value), None)
        if follow:
            table.move_cursor(row=table.row_count - 1)  # follow the newest hit unless the user moved away

    def _log_hit(self, table: DataTable, w: ArmedWatch, hit: WatchHit) -> None:
        self._hits_seen += 1
        key = f"h{self._hits_seen}"
        self.hit_log[key] = (w, hit)
        value = f"{_value(hit.old, hit.spec)} -> {_value(hit.new, hit.spec)}"
        if hit.new_read_after:
            value += " (read after)"
        when = time.strftime("%H:%M:%S", time.localtime(hit.time)) + f".{int(hit.time * 1e6) % 1000000:06d}"
        pause = _ms(hit.pause_s) if hit.pause_s is not None else "never (perf)"
        table.add_row(when, str(hit.tid), w.spec.label, value, _where(hit), pause, key=key)

    def on_watch_pane_disarmed(self, m: Disarmed) -> None:
        w = self.watches.get(m.wid)
        if w is None:
            return
        self._remove(m.wid, m.reason or f"disarmed {w.spec.label} after {w.hits} hits")
        self._show_mode()

    def on_watch_pane_gdb_changed(self, m: GdbChanged) -> None:
        self.gdb_text = m.text
        self.gdb_attached = not m.detached and "failed" not in m.text
        self._notice(m.text, error="failed" in m.text)
        self._show_mode()

    # ------------------------------------------------------------------ drawing
    def _notice(self, text: str, *, error: bool = False) -> None:
        with contextlib.suppress(Exception):
            self.query_one("#watch-notice", Static).update(Text(text, style="bold red" if error else "bold"))
        if error:
            self.app.notify(text, title="watch", severity="warning", timeout=6)

    def _max_rate(self, backend: str) -> float:
        try:
            text = self.query_one("#watch-max-rate", Input).value.strip()
        except Exception:  # noqa: BLE001 - not composed (recording)
            text = ""
        if not text:
            return PERF_MAX_RATE if backend == "perf" else GDB_MAX_RATE
        rate = float(text)
        if rate <= 0:
            raise ValueError("max hits/s must be positive")
        return rate

    def _show_mode(self) -> None:
        if not self.live:
            return
        t = Text()
        backend = self.via or ("perf" if self.perf_ok else "gdb")
        if backend == "perf":
            t.append("backend perf", style="bold green")
            t.append(f" (zero-stop, no ptrace; allowed: {self.perf_ok})")
        else:
            t.append("backend gdb", style="bold yellow")
            t.append(" (stop and inspect: ptrace, pauses the engine; asks first)")
            if self.via is None and not self.perf_ok:
                t.append(f" — perf not permitted: {self.perf_why}", style="yellow")
        t.append(f" · access {self.access} · debug registers {self.registers_used()}/{DEBUG_REGISTERS}")
        default = PERF_MAX_RATE if backend == "perf" else GDB_MAX_RATE
        t.append(f" · hot-field guard at {self._rate_text(default)} hits/s")
        if self.gdb_text:
            t.append("\n" + self.gdb_text, style="yellow" if self.gdb_attached else "dim")
        self.query_one("#watch-mode", Static).update(t)
        n = sum(1 for w in self.watches.values() if w.backend == "gdb" and w.state == "armed")
        if self.gdb_attached:
            self.app.set_attach_state(f"ptrace-attached for {n} watchpoint{'s' if n != 1 else ''}")
        elif not any(w.backend == "gdb" and w.state in ("attaching", "arming") for w in self.watches.values()):
            self.app.set_attach_state(OBSERVING)

    def _rate_text(self, default: float) -> str:
        with contextlib.suppress(Exception):
            text = self.query_one("#watch-max-rate", Input).value.strip()
            if text:
                return text
        return f"{default:,.0f}"

    def _cells(self, w: ArmedWatch) -> tuple:
        now = time.monotonic()
        rate = w.rate(now) if w.state == "armed" else 0.0
        c = w.cost_per_hit()
        if w.backend == "perf":
            cost = "?" if c is None else f"{rate * c * 100:.3f}% ({c * 1e6:.1f} us/hit)"
        else:
            cost = "?" if c is None else f"{rate * c * 100:.2f}% (stops {c * 1e3:.1f} ms/hit)"
        return (str(w.wid), w.spec.label, w.backend, w.spec.access, str(w.hits), f"{rate:,.1f}", cost, w.state)

    def _add_row(self, w: ArmedWatch) -> None:
        self.query_one("#watch-table", DataTable).add_row(*self._cells(w), key=str(w.wid))
        self._show_mode()

    def _update_row(self, w: ArmedWatch) -> None:
        t = self.query_one("#watch-table", DataTable)
        if str(w.wid) not in {k.value for k in t.rows}:
            return
        cells = self._cells(w)
        for i, (key, value) in enumerate(zip(("n", "target", "backend", "access", "hits", "rate", "cost", "state"),
                                             cells)):
            if i >= len(w.shown) or w.shown[i] != value:  # only what changed: each update re-renders the table
                t.update_cell(str(w.wid), key, value, update_width=True)
        w.shown = cells

    def _remove(self, wid: int, reason: str) -> None:
        w = self.watches.pop(wid, None)
        if w is not None:
            w.state = "disarmed"
        t = self.query_one("#watch-table", DataTable)
        if str(wid) in {k.value for k in t.rows}:
            t.remove_row(str(wid))
        error = "hot field" in reason or reason.startswith(("refused", "not armed", "gdb failed", "stopped"))
        self._notice(reason, error=error)
        self._show_mode()

    def _refresh_rates(self) -> None:
        self._flush_log()
        for w in self.watches.values():
            self._update_row(w)  # hits/s and cost move every second; only changed cells are redrawn

    def _show_backtrace(self, w: ArmedWatch, hit: WatchHit) -> None:
        lines = format_hit(hit, 0)
        lines[0] = lines[0].replace("hit 0 at", f"{hit.backend} hit at", 1)
        if hit.pause_s is not None:
            lines.append(f"  the writing thread was stopped {_ms(hit.pause_s)} for this hit")
        self.query_one("#watch-backtrace", Static).update(Text("\n".join(lines)))
