"""Hardware watchpoints that stop the engine: ``hftmem watch --via gdb``, the Watch pane's gdb mode.

GdbSession = AttachedGdb (attached.py: gdb attached in non-stop mode, its guardian, every exit
path detaching; read its docstring for the safety rules) + watchpoints, a reader thread that
handles each hit the moment gdb reports it, a hit-rate guard, and read-only inspection. The
default watch backend is perf (sources/perf/breakpoints.py: no ptrace, no stop); here the engine
is stopped at the write, so a hit can show locals and a full backtrace; the price is a pause.

* Hardware watchpoints only: ``can-use-hw-watchpoints 1``, the spec checked against x86 limits
  before (watchpoint.py), a fifth one refused (check_budget), and anything gdb would turn into a
  software watchpoint deleted and refused. gdb removes its watchpoints when it detaches; the
  kernel keeps the (disabled) ptrace breakpoint slot of each thread until the thread exits, so
  after a gdb watch perf has 3 registers left on those threads.
* Read-only: user text goes through exprguard before it reaches gdb; writes need allow_writes.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from hftmem_tui.errors import NoSuchProcess, SourceError, ToolFailed
from hftmem_tui.sources.codemap import CodeMap
from hftmem_tui.sources.exprguard import check_command, check_expression
from hftmem_tui.sources.gdb.attached import AttachedGdb
from hftmem_tui.sources.gdb.connection import GdbCommandError, MiResult, mi_quote
from hftmem_tui.sources.gdb.preflight import AlreadyTraced, check_attach
from hftmem_tui.sources.gdb.records import (
    HW_KINDS,
    breakpoint_type,
    is_hit,
    symbolised,
    watch_hit,
    watch_number,
    watchpoint_number,
)
from hftmem_tui.sources.memory import read_memory
from hftmem_tui.sources.watchpoint import HitRateGuard, HotField, WatchHit, WatchLimitError, WatchSpec, check_budget

__all__ = ["AlreadyTraced", "DEFAULT_MAX_RATE", "DEFAULT_TIMEOUT", "GdbSession", "SessionStats", "Watchpoint",
           "check_attach"]

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RATE = 20.0  # hits/s: at ~5 ms per stop, 10% of the writing thread's time
_C_TYPES = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int", 8: "unsigned long"}
_WATCH_FLAG = {"write": "", "read": "-r ", "rw": "-a "}


@dataclass(frozen=True, slots=True)
class Watchpoint:
    number: int  # gdb's breakpoint number
    spec: WatchSpec
    kind: str  # gdb's type: "hw watchpoint", "read watchpoint", "acc watchpoint"


@dataclass(frozen=True, slots=True)
class SessionStats:
    """What the session cost the target so far, as seen from the inspector's side."""

    attach_pause_s: float | None  # attach request -> the last thread resumed
    hit_pauses_s: tuple[float, ...]  # per hit: *stopped read -> ^running of its continue
    detach_pause_s: float | None  # detach request -> ^done

    @property
    def total_pause_s(self) -> float:
        return (self.attach_pause_s or 0.0) + sum(self.hit_pauses_s) + (self.detach_pause_s or 0.0)


class GdbSession:
    """One gdb/MI process attached to ``pid`` in non-stop mode; use as a context manager.

    ``with GdbSession(pid) as s: s.watch(spec); for hit in s.hits(timeout=10, count=3): ...``.
    Entering attaches (every thread resumed as soon as gdb has them all), leaving detaches. A
    reader thread handles each hit the moment gdb reports it (log-and-continue: the writing
    thread resumes at once; ``stop_on_hit = True``: it stays stopped until resume()). More than
    ``max_rate`` hits per second (None: DEFAULT_MAX_RATE; 0: no guard) deletes every watchpoint.
    Every request has a deadline (``timeout`` seconds). Raises (before attaching) what
    check_attach raises; ToolFailed/GdbCommandError for gdb failures; WatchLimitError for a
    watchpoint the hardware cannot take; ForbiddenExpression for user text that could write.
    """

    backend = "gdb"

    def __init__(self, pid: int, *, allow_writes: bool = False, timeout: float = DEFAULT_TIMEOUT,
                 gdb: str = "gdb", guardian: bool = True, backtrace_depth: int = 8, symbolize: bool = True,
                 max_rate: float | None = None) -> None:
        self.pid = pid
        self.allow_writes = allow_writes
        self.timeout = timeout
        self.backtrace_depth = backtrace_depth
        self._closed = True  # until gdb runs: close() has nothing to do
        self._watch: dict[int, Watchpoint] = {}
        self._last: dict[int, bytes | None] = {}
        self._pauses: list[float] = []
        self.stop_on_hit = False  # True: a hit leaves the writing thread stopped until resume()
        self.max_rate = DEFAULT_MAX_RATE if max_rate is None else float(max_rate)
        self._queue: deque[WatchHit] = deque()
        self._handled = 0  # hits the reader handled (queued)
        self._disarm_after: int | None = None  # hits(count=): delete the watchpoints at this many
        self._cv = threading.Condition()
        self._rate = HitRateGuard(self.max_rate)  # the one guard every backend uses
        self._disarmed: str | None = None
        self._reader: threading.Thread | None = None
        self._reader_done = False
        self._reader_error: SourceError | None = None
        self._code: CodeMap | None = None
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            self._gdb = AttachedGdb(pid, timeout=timeout, gdb=gdb, guardian=guardian, on_stop=self._wake)
        except BaseException:
            self._close_fds()
            raise
        self._closed = False
        self.exe = self._gdb.exe
        try:
            self._code = CodeMap(pid) if symbolize else None
        except BaseException:
            self.close()
            raise

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"s")

    def _close_fds(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # ----------------------------------------------------------- attach / detach
    @property
    def attached(self) -> bool:
        return self._gdb.attached

    @property
    def attach_pause_s(self) -> float | None:
        return self._gdb.attach_pause_s

    @property
    def detach_pause_s(self) -> float | None:
        return self._gdb.detach_pause_s

    def __enter__(self) -> GdbSession:
        if not self.attached:
            try:
                self.attach()
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def attach(self, *, background: bool = True) -> float:
        """Attach; every thread runs again when this returns (see AttachedGdb.attach), and the
        reader starts. Returns the pause (s). Raises AlreadyTraced/AccessDenied, ToolFailed."""
        with self._gdb.lock:
            pause = self._gdb.attach(background=background)
            self._start_reader()
            return pause

    def detach(self) -> float | None:
        """Detach (gdb removes its watchpoints and resumes every thread); returns the pause."""
        self._stop_reader()
        pause = self._gdb.detach()
        if pause is not None:
            self._watch.clear()
        return pause

    def close(self) -> None:
        """Detach if attached, stop gdb, release the guardian. Idempotent; never raises."""
        if self._closed:
            return
        self._closed = True
        clean = not self.attached
        try:
            if self.attached and self._gdb.alive():
                with contextlib.suppress(SourceError, OSError, ValueError):
                    self.detach()
                    clean = True
        finally:  # even a second Ctrl-C during the detach: gdb and the guardian are dealt with
            self._gdb.shutdown(clean)
            self._stop_reader()
            if self._code is not None:
                self._code.close()
                self._code = None
            self._close_fds()

    # ----------------------------------------------------------- watchpoints
    @property
    def watchpoints(self) -> tuple[Watchpoint, ...]:
        return tuple(self._watch.values())

    def watch(self, spec: WatchSpec) -> Watchpoint:
        """Arm a hardware watchpoint. Raises WatchLimitError (5th one, or gdb would make it a
        software watchpoint), ToolFailed/GdbCommandError."""
        if not self.attached:
            raise ToolFailed("attach first (use the session as a context manager)")
        with self._gdb.lock:
            check_budget(len(self._watch))
            expr = f"*({_C_TYPES[spec.length]} *) {spec.address:#x}"

            def insert(thread: str) -> Watchpoint:
                res = self._gdb.request(f"-break-watch --thread {thread} {_WATCH_FLAG[spec.access]}{mi_quote(expr)}")
                number = watchpoint_number(res.payload)
                kind = breakpoint_type(self._gdb.request(f"-break-info {number}").payload)
                if kind not in HW_KINDS:
                    self._gdb.request(f"-break-delete {number}")
                    raise WatchLimitError(f"gdb would watch {spec.label} in software ({kind or 'unknown'}), "
                                          f"single-stepping the engine: refused")
                return Watchpoint(number, spec, kind)

            wp = self._gdb.with_a_stopped_thread(insert)
            try:
                self._last[wp.number] = read_memory(self.pid, spec.address, spec.length)
            except SourceError:
                self._last[wp.number] = None
            self._watch[wp.number] = wp
            return wp

    def unwatch(self, wp: Watchpoint) -> None:
        """Delete a watchpoint (no stop on that field after this). Raises ToolFailed/GdbCommandError."""
        with self._gdb.lock:
            if self._watch.pop(wp.number, None) is not None:
                self._gdb.with_a_stopped_thread(lambda _t: self._gdb.request(f"-break-delete {wp.number}"))

    # ----------------------------------------------------------- hits
    # A reader thread handles every stop the moment gdb reports it: in log-and-continue mode the
    # writing thread is resumed at once, whether or not the caller is reading hits right now.
    def _start_reader(self) -> None:
        self._reader_stop = False
        self._reader = threading.Thread(target=self._read_loop, name=f"gdbwatch-{self.pid}", daemon=True)
        self._reader.start()

    def _stop_reader(self) -> None:
        reader = getattr(self, "_reader", None)
        if reader is None:
            return
        self._reader_stop = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if reader is not threading.current_thread():
            reader.join(timeout=self.timeout)
        self._reader = None

    def _read_loop(self) -> None:
        out = self._gdb.fileno()
        try:
            while not self._reader_stop:
                readable, _, _ = select.select([out, self._wake_r], [], [], 0.25)
                if self._wake_r in readable:
                    with contextlib.suppress(OSError):
                        os.read(self._wake_r, 4096)
                if self._reader_stop:
                    break
                with self._gdb.lock:
                    if out in readable:
                        self._gdb.pump(0)
                    self._process_stops()
                if self._gdb.threads.exit_code is not None:
                    break
        except (SourceError, OSError, ValueError) as exc:
            self._reader_error = exc if isinstance(exc, SourceError) else ToolFailed(f"gdb: {exc}")
        finally:
            with self._cv:
                self._reader_done = True
                self._cv.notify_all()

    def _process_stops(self) -> None:
        """Handle the stops gdb reported (lock held): queue hits, resume what is not ours to hold."""
        t = self._gdb.threads
        while t.stops and self.attached:
            t_stop, p = t.stops.popleft()
            tid = p.get("thread-id")
            if is_hit(p) and watch_number(p) in self._watch:
                hit = self._hit(t_stop, p, resume=not self.stop_on_hit)
                with self._cv:
                    self._queue.append(hit)
                    self._handled += 1
                    self._cv.notify_all()
                self._guard(hit)
                if self._disarm_after is not None and self._handled >= self._disarm_after:
                    self._disarm_after = None
                    for wp in list(self._watch.values()):  # the caller's count is reached: stop costing
                        with contextlib.suppress(SourceError):
                            self.unwatch(wp)
            elif t.exit_code is None and tid and tid in t.stopped and tid not in self._gdb.held:
                self._gdb.continue_threads(tid)  # any other stop is not ours to keep: never leave a thread stopped
        if t.exit_code is not None:
            with self._cv:
                self._cv.notify_all()

    def _guard(self, hit: WatchHit) -> None:
        if self._disarmed or not self._rate.hit(time.monotonic()):
            return
        paused = sum(self._pauses[-self._rate.in_window():])
        for wp in list(self._watch.values()):
            with contextlib.suppress(SourceError):
                self.unwatch(wp)
        self._disarmed = (f"disarmed {hit.spec.label}: hot field, more than {self.max_rate:,.0f} hits in the last "
                          f"second stopped the engine's thread for {paused * 1e3:,.0f} ms; raise --max-rate "
                          f"to watch it anyway, or use the perf backend (no stop)")

    def next_hit(self, timeout: float | None = None) -> WatchHit | None:
        """The next watchpoint hit, or None when ``timeout`` passed.

        Log-and-continue (``stop_on_hit`` False, the default): the writing thread was resumed at
        once and the hit carries the pause it caused. Stop-on-hit: the thread stays stopped until
        resume(). Raises NoSuchProcess when the target exits while watched, HotField when the
        rate guard disarmed the watchpoints, ToolFailed if gdb failed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        hit = self._next_raw_hit(deadline)
        return None if hit is None else symbolised(hit, self._code)  # outside every lock: the reader goes on

    def _next_raw_hit(self, deadline: float | None) -> WatchHit | None:
        with self._cv:
            while True:
                if self._queue:
                    return self._queue.popleft()
                if self._disarmed:
                    raise HotField(self._disarmed)
                if self._gdb.threads.exit_code is not None:
                    self._gdb.attached = False
                    raise NoSuchProcess(self.pid, f"it exited while watched (exit code {self._gdb.threads.exit_code})")
                if self._reader_error is not None:
                    raise self._reader_error
                if self._reader_done or not self.attached:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cv.wait(0.25 if left is None else min(0.25, left))

    def hits(self, timeout: float | None = None, count: int | None = None) -> Iterator[WatchHit]:
        """Hits until ``timeout`` seconds or ``count`` hits (raises like next_hit). With ``count``,
        the reader deletes the watchpoints the moment the count is reached (no stop after that)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if count is not None:
            with self._cv:
                self._disarm_after = self._handled - len(self._queue) + count
        n = 0
        while count is None or n < count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            hit = self.next_hit(left)
            if hit is None:
                return
            n += 1
            yield hit

    def interrupt(self) -> list[int]:
        """Stop every thread (SIGSTOP through gdb, never seen by the engine) until resume().

        Returns the LWPs stopped. The caller asked for this pause; resume() ends and measures it.
        Raises ToolFailed (not attached, or a thread did not stop: all resumed), NoSuchProcess.
        """
        return self._gdb.interrupt()

    def resume(self) -> float | None:
        """Resume the threads a stop-on-hit or interrupt() left stopped; returns that pause (s) if any."""
        with self._gdb.lock:
            pause = self._gdb.resume_held()
            if pause is not None:
                self._pauses.append(pause)
            return pause

    def _hit(self, t_stop: float, p: dict, resume: bool) -> WatchHit:
        """A hit the reader just read (lock held): its new value and frames while the thread is
        stopped, then the thread resumed (log-and-continue) or held. Symbolised later, by the
        consumer (next_hit): addr2line must never delay the handling of the next stop."""
        wp = self._watch[watch_number(p)]
        tid = p.get("thread-id", "")
        new = None
        with contextlib.suppress(SourceError):
            new = read_memory(self.pid, wp.spec.address, wp.spec.length)  # the thread is stopped at the write
        cmds = [f"-stack-list-frames --thread {tid} 0 {self.backtrace_depth - 1}"]
        if self._gdb.threads.threads.get(tid) is None:
            cmds.append(f"-thread-info {tid}")
        if resume:
            cmds.append(f"-exec-continue --thread {tid}")
        results: list[MiResult | None] = []
        for tok, cmd in zip(self._gdb.send(*cmds), cmds):
            try:
                results.append(self._gdb.wait(tok, cmd))
            except GdbCommandError:
                results.append(None)
        pause = None
        if resume:
            self._gdb.threads.stopped.discard(tid)
            pause = time.monotonic() - t_stop
            self._pauses.append(pause)
        else:
            self._gdb.held.add(tid)
            self._gdb.held_since = t_stop
        if len(cmds) > 1 and cmds[1].startswith("-thread-info") and results[1] is not None:
            self._gdb.threads.learn_lwps(results[1].payload)
        stack = (results[0].payload or {}).get("stack", []) if results[0] is not None else []
        hit = watch_hit(t_stop, p, wp.spec, lwp=self._gdb.threads.threads.get(tid), last=self._last.get(wp.number),
                        new=new, pause=pause, stack=stack)
        if new is not None:
            self._last[wp.number] = new
        return hit

    # ----------------------------------------------------------- read-only inspection
    def evaluate(self, expression: str, *, thread: str | None = None) -> str:
        """Evaluate a user expression (checked by exprguard first) in a stopped thread.

        Raises ForbiddenExpression, GdbCommandError, ToolFailed."""
        expr = mi_quote(check_expression(expression, allow_writes=self.allow_writes))

        def run(t: str) -> str:  # user text is concatenated, never passed through str.format
            payload = self._gdb.request(f"-data-evaluate-expression --thread {t} " + expr).payload
            return str((payload or {}).get("value", ""))

        return run(thread) if thread is not None else self._gdb.with_a_stopped_thread(run)

    def console(self, command: str, *, thread: str | None = None) -> str:
        """Run a read-only gdb CLI command (checked by exprguard first); returns what it printed.

        Raises ForbiddenExpression, GdbCommandError, ToolFailed."""
        text = mi_quote(check_command(command, allow_writes=self.allow_writes))

        def run(t: str) -> str:
            return self._gdb.request(f"-interpreter-exec --thread {t} console " + text).console

        return run(thread) if thread is not None else self._gdb.with_a_stopped_thread(run)

    @property
    def stats(self) -> SessionStats:
        """What the session cost the target so far (attach, each hit, detach)."""
        return SessionStats(self.attach_pause_s, tuple(self._pauses), self.detach_pause_s)
