"""The watch pane: hardware watchpoints from the TUI, zero-stop (perf) by default, gdb on request.

perf (sources/perf/breakpoints.py) never stops the engine and never ptraces it. gdb "stop and
inspect" (sources/gdb/session.py) attaches with ptrace: the pane asks first (a modal saying it
pauses the engine), then shows the measured attach pause and the pause of every hit, and the
header says "ptrace-attached for N watchpoints" until the last gdb watchpoint is disarmed (that
detaches).

The pane only draws and takes input: the headless WatchController (watch/controller.py) chooses
the backend, runs the arm/disarm state machine, its threads and the hit-rate guard; its events
come back here as messages. Every exit path (q, ctrl+c, SIGTERM, SIGHUP, a crash) disarms and
detaches through the app's exit hook before the terminal is restored.
"""

from __future__ import annotations

import contextlib
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static

from hftmem_tui.model.observecost import ArmedEvents
from hftmem_tui.services import NotLive
from hftmem_tui.sources.watchpoint import DEBUG_REGISTERS, WatchHit, WatchSpec
from hftmem_tui.ui.header import OBSERVING
from hftmem_tui.watch.controller import ArmedWatch, WatchController, WatchRefused, default_max_rate
from hftmem_tui.watch.events import Armed, Disarmed, GdbChanged, HitsSeen, Resolved, WatchEvent
from hftmem_tui.watch.format import backtrace_lines, hit_clock, log_value, ms, short_where
from hftmem_tui.textsafe import visible
from hftmem_tui.ui.safe import cell, notify_plain, plain

MAX_LOG = 200  # hits kept in the log table
FLUSH_S = 1.0  # the log and the rates are redrawn once a second, whatever the hit rate
COLUMNS = ("n", "target", "backend", "access", "hits", "rate", "cost", "state")


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
    """Arm/disarm hardware watchpoints on the target; a hits log with values, threads and call chains.

    ``controller``: the target's WatchController (from its services), or on a recording the
    services' refusal (NotLive), shown in the pane's place.
    """

    BINDINGS = [
        Binding("slash", "focus_target", "arm a watchpoint"),
        Binding("escape", "focus_table", "done typing", show=False),
        Binding("ctrl+g", "toggle_backend", "perf/gdb"),
        Binding("ctrl+t", "toggle_access", "write/rw"),
        Binding("d,delete", "disarm", "disarm"),
    ]

    class Reported(Message):
        """An event of the watch controller's threads, handed back on the message loop."""

        def __init__(self, event: WatchEvent) -> None:
            super().__init__()
            self.event = event

    def __init__(self, controller: WatchController | NotLive, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.live = not isinstance(controller, NotLive)
        self.refusal = str(controller) if isinstance(controller, NotLive) else None
        self.via: str | None = None  # None: perf when permitted, else gdb
        self.access = "write"
        self.controller = None if isinstance(controller, NotLive) else controller
        if self.controller is not None:
            self.controller.set_post(lambda event: self.post_message(self.Reported(event)))
        self.hit_log: dict[str, tuple[ArmedWatch, WatchHit]] = {}
        self._hits_seen = 0
        self._shown: dict[int, tuple] = {}  # the cells last drawn, per watch id

    @property
    def watches(self) -> dict[int, ArmedWatch]:
        """The watchpoints held, by id (the controller's state; none on a recording)."""
        return self.controller.watches if self.controller is not None else {}

    @property
    def gdb_attached(self) -> bool:
        return self.controller is not None and self.controller.gdb_attached

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        if self.controller is None:
            yield Static(f"watchpoints: {self.refusal}", id="watch-unavailable")
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
        if self.controller is None:
            return
        t = self.query_one("#watch-table", DataTable)
        for key, label in (("n", "#"), ("target", "target"), ("backend", "backend"), ("access", "access"),
                           ("hits", "hits"), ("rate", "hits/s"), ("cost", "engine cost"), ("state", "state")):
            t.add_column(label, key=key)
        h = self.query_one("#watch-hits", DataTable)
        for key, label in (("time", "time"), ("tid", "thread"), ("target", "target"), ("value", "old -> new (perf: read after the write)"),
                           ("where", "location"), ("pause", "engine paused")):
            h.add_column(label, key=key)
        self.controller.check_perf()
        self.app.add_exit_hook(self.shutdown)
        self.set_interval(FLUSH_S, self._refresh_rates)
        self._show_mode()

    # ------------------------------------------------------------------ public API (the tour calls arm)
    def arm(self, target_text: str, *, via: str | None = None, access: str = "write") -> int | None:
        """Check ``target_text`` and arm a watchpoint on it (perf unless ``via="gdb"`` or perf is not
        permitted; gdb asks first). Returns the watch id, or None when refused (the notice says why)."""
        if self.controller is None:
            self._notice(f"watchpoints: {self.refusal}", error=True)
            return None
        try:
            w, note = self.controller.arm(target_text, via=via or self.via, access=access,
                                          max_rate_text=self._max_rate_text())
        except WatchRefused as e:
            self._notice(str(e), error=True)
            return None
        self._add_row(w)
        self._notice(f"resolving {w.spec.label}…" + (f" ({note})" if note else ""))
        return w.wid

    def disarm(self, wid: int) -> None:
        """Disarm one watchpoint (the last gdb one detaches gdb)."""
        if self.controller is None:
            return
        reason = self.controller.disarm(wid)
        if reason is not None:
            self._remove(wid, reason)
        w = self.watches.get(wid)
        if w is not None:
            self._update_row(w)

    def registers_used(self) -> int:
        return self.controller.registers_used() if self.controller is not None else 0

    def armed_events(self) -> tuple[ArmedEvents, ...]:
        """What the armed watchpoints cost the engine, for the inspector's cost line."""
        return self.controller.armed_events() if self.controller is not None else ()

    def shutdown(self) -> None:
        """Exit hook: disarm every watchpoint and detach gdb, waiting for it (the target must end untraced)."""
        if self.controller is not None:
            self.controller.shutdown()

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

    # ------------------------------------------------------------------ the controller's events
    def on_watch_pane_reported(self, m: Reported) -> None:
        ev = m.event
        if isinstance(ev, Resolved):
            self._resolved(ev)
        elif isinstance(ev, Armed):
            w = self.controller.armed(ev)
            if w is not None:
                self._update_row(w)
                self._notice(f"armed {w.spec.label} ({w.spec.length} bytes at {w.spec.address:#x}, "
                             f"{w.spec.access}): {ev.info}")
                self._show_mode()
        elif isinstance(ev, HitsSeen):
            self.controller.hits_seen(ev)
        elif isinstance(ev, Disarmed):
            reason = self.controller.disarmed(ev)
            if reason is not None:
                self._remove(ev.wid, reason)
                self._show_mode()
        elif isinstance(ev, GdbChanged):
            self.controller.gdb_changed(ev)
            self._notice(ev.text, error="failed" in ev.text)
            self._show_mode()

    def _resolved(self, ev: Resolved) -> None:
        outcome = self.controller.resolved(ev)
        if outcome == "refused":
            self._remove(ev.wid, f"refused: {ev.error}")
        elif outcome != "gone":
            self._update_row(self.watches[ev.wid])
        if outcome == "confirm":
            self.app.push_screen(ConfirmAttach(ev.spec, self.gdb_attached),
                                 lambda ok, wid=ev.wid: self._confirmed(wid, ok))

    def _confirmed(self, wid: int, ok: bool | None) -> None:
        w = self.watches.get(wid)
        if w is None or w.state == "disarmed":
            return
        cancelled = self.controller.confirm(wid, ok)
        if cancelled is not None:
            self._remove(wid, cancelled)
            return
        self._update_row(w)
        self.app.set_attach_state("ptrace-attaching gdb — the engine pauses briefly")

    def _flush_log(self) -> None:
        """Add the hits seen since the last flush to the log: a redraw of the log per flush, not per hit
        (re-rendering the table is what costs the inspector CPU at high hit rates)."""
        pending = self.controller.take_pending()
        if not pending:
            return
        table = self.query_one("#watch-hits", DataTable)
        follow = table.row_count == 0 or table.cursor_row == table.row_count - 1
        for w, hit in pending:
            self._hits_seen += 1
            key = f"h{self._hits_seen}"
            self.hit_log[key] = (w, hit)
            pause = ms(hit.pause_s) if hit.pause_s is not None else "never (perf)"
            table.add_row(hit_clock(hit.time), str(hit.tid), cell(w.spec.label), cell(log_value(hit)), cell(short_where(hit)), pause,
                          key=key)
        while table.row_count > MAX_LOG:
            first = next(iter(table.rows))
            table.remove_row(first)
            self.hit_log.pop(str(first.value), None)
        if follow:
            table.move_cursor(row=table.row_count - 1)  # follow the newest hit unless the user moved away

    # ------------------------------------------------------------------ drawing
    def _notice(self, text: str, *, error: bool = False) -> None:
        with contextlib.suppress(Exception):
            self.query_one("#watch-notice", Static).update(plain(text, "bold red" if error else "bold"))
        if error:
            notify_plain(self.app, text, title="watch", severity="warning", timeout=6)

    def _max_rate_text(self) -> str:
        try:
            return self.query_one("#watch-max-rate", Input).value.strip()
        except Exception:  # noqa: BLE001 - not composed (recording)
            return ""

    def _show_mode(self) -> None:
        c = self.controller
        if c is None:
            return
        t = Text()
        backend = c.backend_for(self.via)
        if backend == "perf":
            t.append("backend perf", style="bold green")
            t.append(f" (zero-stop, no ptrace; allowed: {c.perf_ok})")
        else:
            t.append("backend gdb", style="bold yellow")
            t.append(" (stop and inspect: ptrace, pauses the engine; asks first)")
            if self.via is None and not c.perf_ok:
                t.append(f" — perf not permitted: {visible(c.perf_why)}", style="yellow")
        t.append(f" · access {self.access} · debug registers {self.registers_used()}/{DEBUG_REGISTERS}")
        t.append(f" · hot-field guard at {self._rate_text(default_max_rate(backend))} hits/s")
        if c.gdb_text:
            t.append("\n" + visible(c.gdb_text, newlines=True), style="yellow" if c.gdb_attached else "dim")
        self.query_one("#watch-mode", Static).update(t)
        n = c.gdb_armed()
        if c.gdb_attached:
            self.app.set_attach_state(f"ptrace-attached for {n} watchpoint{'s' if n != 1 else ''}")
        elif not c.gdb_pending():
            self.app.set_attach_state(OBSERVING)

    def _rate_text(self, default: float) -> str:
        return self._max_rate_text() or f"{default:,.0f}"

    def _cells(self, w: ArmedWatch) -> tuple:
        now = time.monotonic()
        rate = w.rate(now) if w.state == "armed" else 0.0
        c = w.cost_per_hit()
        if w.backend == "perf":
            cost = "?" if c is None else f"{rate * c * 100:.3f}% ({c * 1e6:.1f} us/hit)"
        else:
            cost = "?" if c is None else f"{rate * c * 100:.2f}% (stops {c * 1e3:.1f} ms/hit)"
        return (str(w.wid), cell(w.spec.label), w.backend, w.spec.access, str(w.hits), f"{rate:,.1f}", cost, w.state)

    def _add_row(self, w: ArmedWatch) -> None:
        self.query_one("#watch-table", DataTable).add_row(*self._cells(w), key=str(w.wid))
        self._show_mode()

    def _update_row(self, w: ArmedWatch) -> None:
        t = self.query_one("#watch-table", DataTable)
        if str(w.wid) not in {k.value for k in t.rows}:
            return
        cells = self._cells(w)
        shown = self._shown.get(w.wid, ())
        for i, (key, value) in enumerate(zip(COLUMNS, cells)):
            if i >= len(shown) or shown[i] != value:  # only what changed: each update re-renders the table
                t.update_cell(str(w.wid), key, value, update_width=True)
        self._shown[w.wid] = cells

    def _remove(self, wid: int, reason: str) -> None:
        self.controller.remove(wid)
        self._shown.pop(wid, None)
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
        self.query_one("#watch-backtrace", Static).update(plain("\n".join(backtrace_lines(hit))))
