"""gdb ATTACHED to a live process in non-stop mode: the ptrace side of ``hftmem watch --via gdb``.

This is the one place where hftmem uses ptrace ("stop and inspect"). The default watch backend
is perf (sources/perf/breakpoints.py: no ptrace, no stop). AttachedGdb starts gdb and its
guardian, attaches, stops and resumes threads, and detaches; GdbSession (session.py) puts
watchpoints on top. Rules kept here (DESIGN.md, "the one rule"):

* Check before attaching and say why it would fail (preflight.py): another tracer (TracerPid),
  Yama ptrace_scope, another user's process, gdb missing, no debug info.
* NON-STOP mode with ``-target-attach PID &``, always. Measured with the engine's own loop gaps
  (benchmarks/bench_gdbwatch.py, BENCHMARKS.md; 2 vCPUs under load): attach pause 375 ms median
  this way, 525 ms all-stop, 578 ms non-stop waiting for every stop then continuing. And all-stop
  is unsafe here: its ``-exec-interrupt`` sends SIGINT to the target's process group, which a
  ``sigwait``-ing engine takes as "quit" (it killed the demo engine in our trial). In non-stop
  mode gdb interrupts one thread with SIGSTOP (never seen by the engine), a hit stops only the
  thread that touched the field, and ``attach&`` lets gdb resume each thread itself.
* ``handle all nostop noprint pass``: the engine's own signals go to the engine, gdb never
  swallows or stops on them.
* Every exit path detaches: the owner's close() on normal exit and exceptions (the CLI turns
  SIGTERM/SIGHUP into an unwind). If the inspector dies (SIGKILL), gdb reads EOF on its stdin and
  quits, which detaches; a guardian process (guardian.py: own session, survives the SSH session)
  waits for that and, if gdb hangs or is gone, terminates it and SIGCONTs the target if it was
  left group-stopped. No attach without a guardian that said it is ready (unless asked).
  If gdb ITSELF is SIGKILLed while attached, the kernel detaches but leaves the debug registers
  enabled: the guardian clears them within milliseconds, yet a field written more often than
  that would kill the engine with SIGTRAP first. gdb therefore gets oom_score_adj -1000, and perf
  (no ptrace, nothing left behind) stays the default backend.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from hftmem_tui.errors import AccessDenied, NoSuchProcess, SourceError, ToolFailed
from hftmem_tui.sources import procfs
from hftmem_tui.sources.gdb.connection import GdbCommandError, MiConnection, MiResult, mi_quote
from hftmem_tui.sources.gdb.guardian import Guardian
from hftmem_tui.sources.gdb.preflight import already_traced, check_attach
from hftmem_tui.sources.gdb.records import TargetThreads, is_hit

__all__ = ["AttachedGdb"]

SLICE = 0.05  # one read of gdb's output while waiting for threads
_REINTERRUPT = 0.3  # seconds without the stop we asked for before asking again
_SETTINGS = ("mi-async on", "non-stop on", "can-use-hw-watchpoints 1", "auto-solib-add off", "print thread-events off",
             "print frame-arguments none")
_T = TypeVar("_T")


class AttachedGdb:
    """gdb for ``pid`` (checked by check_attach, then started with its guardian; attach() attaches).

    ``lock`` serialises every request sequence (the owner's reader thread takes it too);
    ``threads`` is what gdb said about the target's threads; ``held`` the threads stopped on
    purpose, left stopped until resume_held(). ``on_stop`` is called (lock held) whenever gdb
    reports a stop. Raises what check_attach raises, ToolMissing/ToolFailed if gdb or the
    guardian cannot start.
    """

    def __init__(self, pid: int, *, timeout: float, gdb: str = "gdb", guardian: bool = True,
                 on_stop: Callable[[], None] = lambda: None) -> None:
        self.pid = pid
        self.timeout = timeout
        self.exe = check_attach(pid, gdb=gdb)
        self.was_stopped = procfs.read_status(pid).state in ("T", "t")
        self.lock = threading.RLock()
        self.threads = TargetThreads()
        self.held: set[str] = set()
        self.held_since = 0.0
        self.attached = False
        self.attach_pause_s: float | None = None
        self.detach_pause_s: float | None = None
        self._on_stop = on_stop
        self._guardian: Guardian | None = None
        self._mi = MiConnection(gdb, file_only=False, own_session=True, timeout=timeout)
        try:
            self._start(guardian)
        except BaseException:
            self.shutdown(clean=True)  # not attached yet: nothing for the guardian to clean up
            raise

    def _start(self, guardian: bool) -> None:
        # gdb SIGKILLed while attached leaves the debug registers enabled (guardian.py): keep the
        # OOM killer off it when we may (root / CAP_SYS_RESOURCE).
        with contextlib.suppress(SourceError):
            procfs.set_oom_score_adj(self._mi.pid, -1000)
        if guardian:
            self._guardian = Guardian(self.pid, self._mi.pid, self.was_stopped)
        for setting in _SETTINGS:
            self.request(f"-gdb-set {setting}")
        for sig in ("all", "SIGINT"):
            self.request(f"-interpreter-exec console {mi_quote(f'handle {sig} nostop noprint pass')}")
        self.request(f"-file-exec-and-symbols {mi_quote(self.exe)}", timeout=max(self.timeout, 60.0))
        if self._guardian is not None:
            self._guardian.wait_ready(max(self.timeout, 5.0))  # started meanwhile: python takes a moment

    # ----------------------------------------------------------- requests
    def alive(self) -> bool:
        """Whether gdb still runs."""
        return self._mi.alive()

    def fileno(self) -> int:
        """gdb's stdout, for a reader's select()."""
        return self._mi.fileno()

    def send(self, *commands: str) -> list[int]:
        """Write requests in one write; returns their tokens. Raises ToolFailed."""
        return self._mi.send(*commands)

    def wait(self, token: int, command: str, timeout: float | None = None) -> MiResult:
        """The answer of one sent request. Raises GdbCommandError, ToolFailed."""
        return self._mi.wait(token, command, timeout, on_record=self._on_record)

    def request(self, command: str, timeout: float | None = None) -> MiResult:
        """One request and its answer. Raises GdbCommandError, ToolFailed."""
        with self.lock:
            return self._mi.request(command, timeout, on_record=self._on_record)

    def _on_record(self, rec: dict) -> None:
        if self.threads.apply(rec):
            self._on_stop()  # the reader handles it even if the record came with an answer

    def pump(self, seconds: float) -> None:
        """Read async records for up to ``seconds`` (returns as soon as something arrived).
        Raises ToolFailed if gdb exited."""
        if not self._mi.read(seconds, self._on_record) and not self._mi.alive():
            raise ToolFailed("gdb exited while watching")

    def continue_threads(self, *threads: str) -> float:
        """Resume the given gdb threads in one write; returns when gdb said ^running (monotonic)."""
        cmds = [f"-exec-continue --thread {t}" for t in threads]
        with self.lock:
            tokens = self.send(*cmds)
            for tok, cmd in zip(tokens, cmds):
                try:
                    self.wait(tok, cmd)
                except GdbCommandError as exc:
                    if "running" not in exc.gdb_message and "exited" not in exc.gdb_message:
                        raise
            for t in threads:
                self.threads.stopped.discard(t)
                self.held.discard(t)
            return time.monotonic()

    def continue_all(self, strict: bool = False) -> None:
        """Resume every thread; errors raised only if ``strict``."""
        try:
            self.request("-exec-continue --all")
        except SourceError:
            if strict:
                raise
        self.threads.stopped.clear()
        self.held.clear()

    def refresh_lwps(self) -> None:
        """Ask gdb which LWP each of its threads is."""
        self.threads.learn_lwps(self.request("-thread-info").payload)

    # ----------------------------------------------------------- attach / detach
    def attach(self, *, background: bool = True) -> float:
        """Attach; every thread runs again when this returns. Returns the pause (s) as seen from here.

        ``background`` (default): ``-target-attach PID &``, gdb resumes each thread itself as soon
        as its post-attach work is done (no round trip of ours). Else: wait until gdb reported every
        thread stopped, then ``-exec-continue --all`` (kept for the benchmark's comparison).
        Raises AlreadyTraced/AccessDenied if ptrace refuses after all, ToolFailed on a timeout.
        """
        with self.lock:
            t0 = time.monotonic()
            try:
                self.request(f"-target-attach {self.pid}{' &' if background else ''}")
            except GdbCommandError as exc:
                if "not permitted" in exc.gdb_message or "ptrace" in exc.gdb_message:
                    st = procfs.read_status(self.pid)
                    if st.tracer_pid:
                        raise already_traced(self.pid, st.tracer_pid, "ptrace refused") from None
                    raise AccessDenied(self.pid, "it with ptrace", exc.gdb_message) from None
                raise
            self.attached = True
            deadline = time.monotonic() + self.timeout
            if background:
                self._wait_all_running(deadline)
            else:
                self._wait_all_stopped(deadline)
                self.continue_all(strict=True)
            self.threads.stops.clear()  # the attach stops, all handled
            self.attach_pause_s = time.monotonic() - t0
            self.refresh_lwps()
            return self.attach_pause_s

    def _wait_all_running(self, deadline: float) -> None:
        # Done when gdb says every thread runs; a thread it reports stopped (a signal that
        # arrived during the attach) is resumed by us, the signal passed on.
        t = self.threads
        while not t.threads or set(t.threads) - t.running:
            if t.exit_code is not None:
                raise NoSuchProcess(self.pid, "it exited while gdb attached")
            if time.monotonic() > deadline:
                self.continue_all()
                raise ToolFailed(f"gdb did not resume every thread of {self.pid} within {self.timeout:g} s")
            stopped = sorted(t.stopped & set(t.threads))
            if stopped:
                self.continue_threads(*stopped)
                t.running.update(stopped)
            self.pump(SLICE)

    def _wait_all_stopped(self, deadline: float) -> None:
        # Wait until gdb has reported EVERY thread stopped, then resume them in one request.
        # (Resuming threads one by one as they were reported made gdb lose the stop report of
        # a later thread in our trials, leaving it stopped: never again.)
        t = self.threads
        while not t.threads or set(t.threads) - t.stopped:
            if t.exit_code is not None:
                raise NoSuchProcess(self.pid, "it exited while gdb attached")
            if time.monotonic() > deadline:
                self.continue_all()
                raise ToolFailed(f"gdb did not report every thread of {self.pid} attached within "
                                 f"{self.timeout:g} s")
            self.pump(SLICE)

    def detach(self) -> float | None:
        """Detach (gdb removes its watchpoints and resumes every thread); returns the pause, None
        when there was nothing to detach from. Raises GdbCommandError, ToolFailed."""
        with self.lock:
            if not self.attached:
                return None
            self.attached = False
            if self.threads.exit_code is not None:
                return None
            t0 = time.monotonic()
            try:
                self.request("-target-detach")
            except GdbCommandError as exc:
                if "not being run" not in exc.gdb_message:
                    raise
                return None
            self.detach_pause_s = time.monotonic() - t0
            return self.detach_pause_s

    def shutdown(self, clean: bool) -> None:
        """Stop gdb and release the guardian (``clean``: gdb detached, nothing to clean up).
        Call detach() first; never raises."""
        if clean and self._guardian is not None:
            self._guardian.gdb_detached()
        self._mi.quit()  # gdb quits (and detaches) on -gdb-exit or SIGTERM
        if self._guardian is not None:
            self._guardian.release()  # EOF: gdb is gone; it checks the target and exits
            self._guardian = None

    # ----------------------------------------------------------- stopping threads
    def _idlest_thread(self) -> str:
        """The gdb thread that costs the engine least to stop for a moment (least CPU so far)."""
        def cpu(lwp: int | None) -> int:
            if lwp is None:
                return 1 << 62
            try:
                st = procfs.read_task_stat(self.pid, lwp)
            except (SourceError, ValueError, IndexError):
                return 1 << 62
            return st.utime_ticks + st.stime_ticks
        if any(v is None for v in self.threads.threads.values()):
            self.refresh_lwps()
        if not self.threads.threads:
            raise NoSuchProcess(self.pid, "no thread left")
        return min(self.threads.threads, key=lambda t: (cpu(self.threads.threads[t]), int(t)))

    def with_a_stopped_thread(self, action: Callable[[str], _T]) -> _T:
        """Run ``action(thread)`` with one thread stopped (gdb evaluates in a stopped thread's
        context): an already stopped one, else the idlest thread stopped briefly (SIGSTOP by gdb).
        Raises NoSuchProcess, ToolFailed, and what ``action`` raises."""
        with self.lock:  # every send and its wait under one hold: the reader must not take our answer
            if self.threads.stopped:
                return action(sorted(self.threads.stopped)[0])
            anchor = self._stop_one(self._idlest_thread())
            try:
                return action(anchor)
            finally:
                self.continue_threads(anchor)

    def _stop_one(self, anchor: str) -> str:
        deadline = time.monotonic() + self.timeout
        asked = 0.0
        while anchor not in self.threads.stopped:
            if self.threads.exit_code is not None:
                raise NoSuchProcess(self.pid, "it exited while watched")
            now = time.monotonic()
            if now > deadline:
                raise ToolFailed(f"gdb did not stop thread {anchor} within {self.timeout:g} s")
            if now - asked > _REINTERRUPT:
                # gdb drops an interrupt that races with its own resume of that thread: ask again
                tok = self.send(f"-exec-interrupt --thread {anchor}")
                self.wait(tok[0], "-exec-interrupt")
                asked = now
            self.pump(SLICE)
        # its *stopped is ours: drop it so hits() does not take it for something else
        self.threads.keep_stops(lambda p: p.get("thread-id") != anchor or is_hit(p))
        return anchor

    def interrupt(self) -> list[int]:
        """Stop every thread (SIGSTOP through gdb, never seen by the engine) until resume_held().

        Returns the LWPs stopped. Raises ToolFailed (not attached, or a thread did not stop:
        all resumed), NoSuchProcess.
        """
        with self.lock:
            if not self.attached:
                raise ToolFailed("not attached")
            t0 = time.monotonic()
            self.request("-exec-interrupt --all")
            wanted = set(self.threads.threads)
            self.held.update(wanted)  # from now on the reader leaves them stopped
            deadline = time.monotonic() + self.timeout
            while wanted - self.threads.stopped:
                if self.threads.exit_code is not None:
                    raise NoSuchProcess(self.pid, "it exited while watched")
                if time.monotonic() > deadline:
                    self.continue_all()
                    raise ToolFailed(f"gdb did not stop every thread of {self.pid} within {self.timeout:g} s")
                self.pump(SLICE)
                wanted &= set(self.threads.threads)  # a thread may exit meanwhile
            self.threads.keep_stops(is_hit)
            self.held_since = t0
            return sorted(lwp for t, lwp in self.threads.threads.items() if t in wanted and lwp is not None)

    def resume_held(self) -> float | None:
        """Resume the threads left stopped on purpose; returns how long they were stopped (s)."""
        with self.lock:
            held = sorted(self.held)
            if not held:
                return None
            t_stop = self.held_since
            return self.continue_threads(*held) - t_stop
