"""The headless watch controller: which backend, the arm/disarm state machine, the hit threads.

perf (sources/perf/breakpoints.py) never stops the engine and never ptraces it; gdb
(sources/gdb/session.py) attaches with ptrace, so the caller must confirm first. States of one
watchpoint (:class:`ArmedWatch`)::

    resolving --perf--> arming --> armed --> disarming --> (gone)
              --gdb---> confirm? --yes--> attaching|arming --> armed --> disarming --> (gone)

Threads: resolving a target (symbols on the ELF file), every perf hit loop, and the one thread
that owns the gdb session (GdbSession is not shared) run off the caller's loop and report with
:data:`WatchEvent` values through ``post`` (called from those threads). The caller hands each
event back on its own thread to the matching method (``resolved``, ``armed``, ...), which moves
the state machine; only then does the UI draw. The watch state is never touched by the threads.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hftmem_tui.errors import AccessDenied, SourceError
from hftmem_tui.feeds.sampler import ProcessIdentity, ProcessReplaced
from hftmem_tui.model.observecost import ArmedEvents
from hftmem_tui.sources.exprguard import check_expression
from hftmem_tui.sources.gdb.session import DEFAULT_MAX_RATE as GDB_MAX_RATE
from hftmem_tui.sources.perf.breakpoints import DEFAULT_MAX_RATE as PERF_MAX_RATE
from hftmem_tui.sources.perf.breakpoints import PerfWatch, check_perf_access
from hftmem_tui.sources.procfs import check_target
from hftmem_tui.sources.watchpoint import (ACCESS_KINDS, HotField, WatchHit, WatchSpec, check_budget, parse_target,
                                           resolve_target)
from hftmem_tui.watch.events import Armed, Disarmed, GdbChanged, HitsSeen, Resolved, WatchEvent
from hftmem_tui.watch.format import first_hit_lines
from hftmem_tui.watch.gdbowner import GdbOwner

__all__ = [
    "ArmedWatch", "Armed", "Disarmed", "FirstHitWatch", "GdbChanged", "HitsSeen", "Resolved", "WatchController",
    "WatchEvent", "WatchRefused", "choose_backend", "default_max_rate", "prepare_watch",
]

RATE_WINDOW_S = 5.0  # hits/s shown: arrivals over the last 5 s (gdb; perf uses the kernel's count)
BATCH_S = 0.25  # perf hits are posted in batches: a 1 kHz field must not flood the caller's loop
LOG_PER_FLUSH = 6  # hits kept for the log per flush
LOG_PER_BATCH = 3  # hits kept for the log per batch (<= 12/s): at 1,000 hits/s the log shows the latest


def choose_backend(pid: int, via: str | None, access: str = "write") -> tuple[str, str | None]:
    """``("perf"|"gdb", note)``: perf unless asked for gdb, perf is not permitted, or a read-only
    watch is asked for (then a note saying why gdb is used). An explicit ``--via perf`` that is not
    permitted raises AccessDenied."""
    if via == "gdb":
        return "gdb", None
    if via is None and access == "read":
        return "gdb", ("perf has no read-only hardware breakpoints (x86 traps reads and writes alike): using "
                       "gdb, which filters the reads (ptrace: the reading thread stops at each hit)")
    try:
        check_perf_access(pid)
    except AccessDenied as exc:
        if via == "perf":
            raise
        return "gdb", f"{exc}; using gdb instead (ptrace: the engine's thread stops at each hit)"
    return "perf", None


def prepare_watch(pid: int, target: str, access: str, via: str | None) -> tuple[str, str | None, WatchSpec]:
    """Refusals first, then the backend and the resolved spec: ``(backend, note, spec)``.

    The user's text goes through the expression guard before anything else (``'x = 1'`` is refused
    before a symbol is looked up or a debugger started). Raises SourceError subclasses.
    """
    check_expression(target)
    check_target(pid)
    backend, note = choose_backend(pid, via, access)
    return backend, note, resolve_target(pid, target, access)


def default_max_rate(backend: str) -> float:
    """The hot-field guard's default limit in hits/s for ``backend``."""
    return PERF_MAX_RATE if backend == "perf" else GDB_MAX_RATE


class WatchRefused(ValueError):
    """A request refused before anything was started; the message is the whole notice."""


@dataclass
class ArmedWatch:
    """One watchpoint the controller holds (caller-thread state)."""

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

    def rate(self, now: float) -> float:
        """Hits/s: the kernel's count (perf), else arrivals over the last RATE_WINDOW_S."""
        if self.kernel_rate is not None:
            return self.kernel_rate
        while self.arrivals and self.arrivals[0] < now - RATE_WINDOW_S:
            self.arrivals.popleft()
        span = RATE_WINDOW_S if self.armed_at is None else min(RATE_WINDOW_S, max(now - self.armed_at, 1.0))
        return len(self.arrivals) / span

    def cost_per_hit(self) -> float | None:
        """Seconds one hit costs the engine: the mean gdb stop, or perf's measured trap."""
        if self.backend == "gdb":
            return sum(self.pauses) / len(self.pauses) if self.pauses else None
        return self.cost_per_hit_s


def _parse_max_rate(text: str, backend: str) -> float:
    if not text.strip():
        return default_max_rate(backend)
    rate = float(text)
    if rate <= 0:
        raise ValueError("max hits/s must be positive")
    return rate


class WatchController:
    """Arm and disarm watchpoints on ``pid``; ``post(event)`` is called from the worker threads.

    ``post`` may be given later (``set_post``): the App can build the controller with the
    target's other services and hand it to the pane, which then receives its events.

    Requests (``arm``, ``confirm``, ``disarm``) and events handed back (``resolved``, ``armed``,
    ``hits_seen``, ``disarmed``, ``gdb_changed``) run on the caller's thread. ``shutdown()``
    disarms everything and detaches gdb, waiting for it (the target must end untraced).
    """

    def __init__(self, pid: int, post: Callable[[WatchEvent], None] | None = None) -> None:
        self.pid = pid
        self._post_to = post
        self.watches: dict[int, ArmedWatch] = {}
        self.gdb_attached = False
        self.gdb_text = ""
        self.perf_ok: str | None = None  # who grants perf ("root"), None when not permitted
        self.perf_why = ""
        self.pending: list[tuple[ArmedWatch, WatchHit]] = []  # hits for the log, not yet drawn
        self._next_id = 1
        self._gdb_q: queue.Queue = queue.Queue()
        self._gdb_thread: threading.Thread | None = None
        self._handles_lock = threading.Lock()
        self._shutting_down = False
        try:  # (pid, start time): a watch ends, saying so, when the pid names another process
            self.identity: ProcessIdentity | None = ProcessIdentity.of(pid)
        except SourceError:
            self.identity = None

    def replaced(self) -> str | None:
        """Why the watched process is no longer the one armed on (its pid was reused), else None."""
        if self.identity is None:
            return None
        try:
            self.identity.check()
        except ProcessReplaced as e:
            return str(e)
        except SourceError:
            return None
        return None

    def set_post(self, post: Callable[[WatchEvent], None]) -> None:
        """Where the worker threads report from now on (called from those threads)."""
        self._post_to = post

    def _post(self, event: WatchEvent) -> None:
        if self._post_to is not None:  # nobody listening yet: a thread's report is dropped, never raised
            self._post_to(event)

    # ------------------------------------------------------------------ what the UI shows
    def check_perf(self) -> None:
        """Find out once whether perf breakpoints are permitted (``perf_ok``, else ``perf_why``)."""
        try:
            self.perf_ok = check_perf_access(self.pid)
        except AccessDenied as e:
            self.perf_ok, self.perf_why = None, str(e)

    def backend_for(self, via: str | None) -> str:
        """The backend an arm would use: ``via``, else perf when permitted, else gdb."""
        return via or ("perf" if self.perf_ok else "gdb")

    def registers_used(self) -> int:
        """Debug registers the watchpoints hold or are about to (of DEBUG_REGISTERS)."""
        return sum(1 for w in self.watches.values() if w.state not in ("disarmed",))

    def gdb_armed(self) -> int:
        """gdb watchpoints armed now."""
        return sum(1 for w in self.watches.values() if w.backend == "gdb" and w.state == "armed")

    def gdb_pending(self) -> bool:
        """True while a gdb watchpoint is being attached or armed."""
        return any(w.backend == "gdb" and w.state in ("attaching", "arming") for w in self.watches.values())

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

    def take_pending(self) -> list[tuple[ArmedWatch, WatchHit]]:
        """The hits to add to the log since the last call (at most LOG_PER_FLUSH)."""
        out, self.pending = self.pending, []
        return out

    # ------------------------------------------------------------------ requests
    def arm(self, target_text: str, *, via: str | None = None, access: str = "write",
            max_rate_text: str = "") -> tuple[ArmedWatch, str | None]:
        """Check ``target_text`` and start resolving it: ``(watch, note)``, state "resolving".

        perf unless ``via="gdb"`` or perf is not permitted (``note`` says why gdb). Raises
        WatchRefused (the notice) before any lookup or debugger when the request is refused.
        """
        if access not in ACCESS_KINDS or access == "read":
            raise WatchRefused(f"access must be write or rw, not {access!r} (x86 has no read-only breakpoints)")
        try:
            text = check_expression(target_text)  # before anything reaches a symbol lookup or a debugger
            parse_target(text)
            check_budget(self.registers_used())
            backend, note = choose_backend(self.pid, via)  # perf unless gdb asked or perf refused
            max_rate = _parse_max_rate(max_rate_text, backend)
        except (SourceError, ValueError) as e:
            raise WatchRefused(f"refused: {e}") from None
        wid = self._next_id
        self._next_id += 1
        w = self.watches[wid] = ArmedWatch(wid, WatchSpec(1, 1, access, text), backend, max_rate, state="resolving")
        threading.Thread(target=self._resolve, args=(wid, text, access, backend), daemon=True,
                         name=f"watch-resolve-{wid}").start()
        return w, note

    def confirm(self, wid: int, ok: bool | None) -> str | None:
        """The answer to "attach gdb?": None when it goes on (state attaching|arming), else why not."""
        w = self.watches.get(wid)
        if w is None or w.state == "disarmed":
            return None
        if not ok:
            return f"cancelled: {w.spec.label} not armed (gdb not attached)"
        w.state = "attaching" if not self.gdb_attached else "arming"
        if self._gdb_thread is None or not self._gdb_thread.is_alive():
            self._gdb_thread = threading.Thread(target=self._gdb_loop, daemon=True, name="watch-gdb")
            self._gdb_thread.start()
        self._gdb_q.put(("arm", wid, (w.spec, w.max_rate)))
        return None

    def disarm(self, wid: int) -> str | None:
        """Disarm one watchpoint (the last gdb one detaches gdb). Returns the reason when it is gone at
        once (not armed yet); otherwise it is "disarming" and a Disarmed event follows."""
        w = self.watches.get(wid)
        if w is None or w.state in ("disarming", "disarmed"):
            return None
        if w.backend == "gdb" and w.state in ("armed", "attaching", "arming"):
            w.state = "disarming"  # queued behind its arm request: the gdb thread disarms it (and maybe detaches)
            self._gdb_q.put(("disarm", wid, None))
        elif w.backend == "perf" and w.handle is not None:
            w.state = "disarming"
            threading.Thread(target=w.handle.close, daemon=True).start()  # the hit loop then posts Disarmed
        else:
            w.state = "disarmed"  # still resolving or waiting for the user: the result is dropped
            return "disarmed before it was armed"
        return None

    def remove(self, wid: int) -> ArmedWatch | None:
        """Forget a watchpoint that is gone (state "disarmed")."""
        w = self.watches.pop(wid, None)
        if w is not None:
            w.state = "disarmed"
        return w

    def shutdown(self) -> None:
        """Disarm every watchpoint and detach gdb, waiting for it (the target must end untraced)."""
        with self._handles_lock:
            self._shutting_down = True
            handles = [w.handle for w in self.watches.values() if w.handle is not None]
        for h in handles:
            with contextlib.suppress(Exception):
                h.close()
        if self._gdb_thread is not None and self._gdb_thread.is_alive():
            self._gdb_q.put(("close", 0, None))
            self._gdb_thread.join(timeout=20.0)

    # ------------------------------------------------------------------ events handed back
    def resolved(self, ev: Resolved) -> str:
        """Move on after resolving: "gone" (dropped), "refused", "confirm" (gdb: ask the user) or "arming"."""
        w = self.watches.get(ev.wid)
        if w is None or w.state == "disarmed":
            return "gone"
        if ev.error is not None:
            return "refused"
        w.spec = ev.spec
        if ev.backend == "gdb":
            w.state = "confirm?"
            return "confirm"
        w.state = "arming"
        threading.Thread(target=self._perf_loop, args=(ev.wid, ev.spec, w.max_rate), daemon=True,
                         name=f"perfwatch-ui-{ev.wid}").start()
        return "arming"

    def armed(self, ev: Armed) -> ArmedWatch | None:
        """The watchpoint is armed: the watch to show as armed, None when it is going away."""
        w = self.watches.get(ev.wid)
        if w is None:
            return None
        w.armed_at = time.monotonic()
        if w.state == "disarming":  # gdb: disarmed while arming; its disarm request is queued behind
            return None
        w.state = "armed"
        w.events, w.cost_per_hit_s = ev.events, ev.cost_per_hit_s
        return w

    def hits_seen(self, ev: HitsSeen) -> None:
        """Count the hits and keep the latest few for the log (``take_pending``)."""
        w = self.watches.get(ev.wid)
        if w is None:
            return
        now = time.monotonic()
        w.hits = ev.counted if ev.counted is not None else w.hits + len(ev.hits)
        w.kernel_rate = ev.rate_hz
        w.arrivals.extend([now] * len(ev.hits))
        w.pauses.extend(h.pause_s for h in ev.hits if h.pause_s is not None)
        self.pending.extend((w, hit) for hit in ev.hits[-LOG_PER_BATCH:])
        del self.pending[:-LOG_PER_FLUSH]

    def disarmed(self, ev: Disarmed) -> str | None:
        """The reason to show for a watchpoint that is gone, None when it was already forgotten."""
        w = self.watches.get(ev.wid)
        if w is None:
            return None
        return ev.reason or f"disarmed {w.spec.label} after {w.hits} hits"

    def gdb_changed(self, ev: GdbChanged) -> None:
        """gdb attached, failed or detached: what the header and the mode line say."""
        self.gdb_text = ev.text
        self.gdb_attached = not ev.detached and "failed" not in ev.text

    # ------------------------------------------------------------------ threads
    def _resolve(self, wid: int, text: str, access: str, backend: str) -> None:
        try:
            spec = resolve_target(self.pid, text, access)
        except SourceError as e:
            self._post(Resolved(wid, None, backend, str(e)))
            return
        self._post(Resolved(wid, spec, backend))

    def _open_perf(self, wid: int, spec: WatchSpec, max_rate: float) -> PerfWatch | None:
        try:
            w = PerfWatch(self.pid, spec, max_rate=max_rate)
        except SourceError as e:
            self._post(Disarmed(wid, f"not armed: {e}"))
            return None
        with self._handles_lock:
            aw = self.watches.get(wid)
            if self._shutting_down or aw is None or aw.state == "disarmed":
                w.close()
                return None
            aw.handle = w
        return w

    def _perf_loop(self, wid: int, spec: WatchSpec, max_rate: float) -> None:
        w = self._open_perf(wid, spec, max_rate)
        if w is None:
            return
        st = w.stats
        self._post(Armed(wid, f"perf on {st.armed_threads} threads, no ptrace (allowed: {w.granted_by})",
                         w.event_count, st.cost_per_hit_s))
        reason: str | None = None
        try:
            self._perf_batches(wid, w)
        except HotField as e:
            reason = str(e)
        except SourceError as e:
            reason = f"stopped: {e}"
        finally:
            closed = w.closed
            w.close()
        if reason is None and not closed:
            replaced = self.replaced()
            reason = (f"stopped: {replaced} ({w.stats.hits} hits)" if replaced
                      else f"the target exited or the watch ended ({w.stats.hits} hits)")
        self._post(Disarmed(wid, reason))

    def _perf_batches(self, wid: int, w: PerfWatch) -> None:
        """Post hits in batches of BATCH_S (and the kernel's count at least once a second) until closed."""
        last_post = 0.0
        while not w.closed:
            batch: list[WatchHit] = []
            end = time.monotonic() + BATCH_S
            for hit in w.hits(timeout=BATCH_S):
                batch.append(hit)
                if w.closed or time.monotonic() > end:
                    break
            now = time.monotonic()
            if batch or now - last_post >= 1.0:
                replaced = self.replaced() if now - last_post >= 1.0 else None
                if replaced:  # the pid names another process: end the watch with that reason
                    raise SourceError(replaced)
                st = w.stats
                self._post(HitsSeen(wid, tuple(batch), st.counted, st.rate_hz))
                last_post = now
            if not batch and w.reader_done:
                return  # the target exited (or close()): no more hits

    def _gdb_loop(self) -> None:
        """Own the gdb session: arm/disarm requests from the queue, hits in between; detach when empty."""
        gdb = GdbOwner(self.pid, self._post, self._gdb_q)
        try:
            while gdb.step():
                pass
        except Exception as e:  # noqa: BLE001 - whatever failed, the finally detaches
            self._post(GdbChanged(False, f"gdb session failed: {e}"))
            for wid in list(gdb.wps):
                self._post(Disarmed(wid, f"gdb failed: {e}"))
        finally:
            gdb.detach()


class FirstHitWatch:
    """The tour's watch key: a zero-stop perf watchpoint on ``target``, until its first hit.

    ``run()`` blocks (call it off the UI thread) and returns the lines to show; ``close()`` from
    any thread makes it return at once (idempotent).
    """

    NO_HIT = "no write within the time limit (is the bug on? press b)"

    def __init__(self, pid: int, target: str) -> None:
        self.pid = pid
        self.target = target
        self._watch: PerfWatch | None = None
        self._closed = False

    def run(self, timeout: float) -> list[str]:
        """The first hit within ``timeout`` seconds as text, or the one line saying why there is none."""
        try:
            spec = resolve_target(self.pid, self.target)
            with PerfWatch(self.pid, spec) as w:
                self._watch = w
                if self._closed:
                    return [self.NO_HIT]
                for hit in w.hits(timeout=timeout):
                    return first_hit_lines(hit)
                return [self.NO_HIT]
        except SourceError as e:
            return [f"watch {self.target}: {e}"]
        finally:
            self._watch = None

    def close(self) -> None:
        """Stop waiting: the watchpoint is disarmed and run() returns."""
        self._closed = True
        w = self._watch
        if w is not None:
            w.close()
