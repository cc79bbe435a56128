"""A gdb/MI session ATTACHED to a live process: hardware watchpoints that stop the engine.

This is the one place where hftmem uses ptrace ("stop and inspect", ``hftmem watch --via gdb``).
The default watch backend is perf (sources/perfwatch.py: no ptrace, no stop). Here the engine is
stopped at the write, so a hit can show locals and a full backtrace; the price is a pause.

Rules this module keeps (DESIGN.md, "the one rule"):

* Check before attaching and say why it would fail: another tracer (TracerPid), Yama
  ptrace_scope, another user's process, gdb missing, no debug info.
* NON-STOP mode with ``-target-attach PID &``, always. Measured with the engine's own loop gaps
  (benchmarks/bench_gdbwatch.py, BENCHMARKS.md; 2 vCPUs under load): attach pause 375 ms median
  this way, 525 ms all-stop, 578 ms non-stop waiting for every stop then continuing. And all-stop
  is unsafe here: its ``-exec-interrupt`` sends SIGINT to the target's process group, which a
  ``sigwait``-ing engine takes as "quit" (it killed the demo engine in our trial). In non-stop
  mode gdb interrupts one thread with SIGSTOP (never seen by the engine), a hit stops only the
  thread that touched the field, and ``attach&`` lets gdb resume each thread itself.
* Hardware watchpoints only: ``can-use-hw-watchpoints 1``, the spec checked against x86 limits
  before (watch.py), a fifth one refused (check_budget), and anything gdb would turn into a
  software watchpoint deleted and refused.
* ``handle all nostop noprint pass``: the engine's own signals go to the engine, gdb never
  swallows or stops on them.
* Read-only: user text goes through exprguard before it reaches gdb; writes need allow_writes.
* Every exit path detaches: close() on normal exit and exceptions (the CLI turns SIGTERM/SIGHUP
  into an unwind). If the inspector dies (SIGKILL), gdb reads EOF on its stdin and quits, which
  detaches; a guardian process (own session, survives the SSH session) waits for that and, if
  gdb hangs or is gone, terminates it and SIGCONTs the target if it was left group-stopped.
  gdb removes its watchpoints when it detaches; the kernel keeps the (disabled) ptrace
  breakpoint slot of each thread until the thread exits, so after a gdb watch perf has 3
  registers left on those threads. If gdb ITSELF is SIGKILLed while attached, the kernel detaches
  but leaves the debug registers enabled: the guardian clears them within milliseconds, yet a
  field written more often than that would kill the engine with SIGTRAP first. gdb therefore gets
  oom_score_adj -1000, and perf (no ptrace, nothing left behind) stays the default backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import re
import select
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from hftmem_tui.sources.codemap import CodeMap
from hftmem_tui.errors import AccessDenied, NoDebugInfo, NoSuchProcess, SourceError, ToolFailed, ToolMissing
from hftmem_tui.sources.exprguard import check_command, check_expression
from hftmem_tui.sources.gdb.mi import GdbCommandError, MiResult, _mi_quote, quit_gdb, result_of, wait_for_token
from hftmem_tui.sources.memory import read_memory
from hftmem_tui.sources.perf.breakpoints import HotField, _cap_eff
from hftmem_tui.sources.procfs import check_target, read_status
from hftmem_tui.sources.symbols import exe_path_of, read_elf_info
from hftmem_tui.sources.watchpoint import Frame, WatchHit, WatchLimitError, WatchSpec, check_budget

__all__ = ["AlreadyTraced", "DEFAULT_MAX_RATE", "DEFAULT_TIMEOUT", "GdbSession", "SessionStats", "Watchpoint",
           "check_attach"]

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RATE = 20.0  # hits/s: at ~5 ms per stop, 10% of the writing thread's time
CAP_SYS_PTRACE = 19
_SLICE = 0.05
_REINTERRUPT = 0.3  # seconds without the stop we asked for before asking again
_C_TYPES = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int", 8: "unsigned long"}
_WATCH_FLAG = {"write": "", "read": "-r ", "rw": "-a "}
_HIT_REASONS = ("watchpoint-trigger", "read-watchpoint-trigger", "access-watchpoint-trigger")
_LWP_RE = re.compile(r"\b(?:LWP|process)\s+(\d+)")


class AlreadyTraced(SourceError):
    """Another debugger or tracer already holds the process (ptrace allows one tracer)."""


def _value_bytes(text: str | None, length: int) -> bytes | None:
    """gdb's printed value of our ``unsigned`` watch expression (``"42"``, ``"65 'A'"``) as bytes."""
    m = re.match(r"\s*(\d+)", text or "")
    if not m or int(m.group(1)) >= 1 << (8 * length):
        return None
    return int(m.group(1)).to_bytes(length, "little")


# ------------------------------------------------------------------ pre-attach checks

def _ptrace_scope() -> int | None:
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None  # no Yama: plain uid/capability rules


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def check_attach(pid: int, *, gdb: str = "gdb", scope: int | None | str = "read", euid: int | None = None,
                 caps: int | None = None) -> str:
    """Check that gdb could attach to ``pid`` without trouble; return the executable's path.

    Raises NoSuchProcess/ZombieProcess/KernelThread, AlreadyTraced (TracerPid set), AccessDenied
    (Yama ptrace_scope, another user's process), ToolMissing (gdb), NoDebugInfo (stripped or
    built without -g). ``scope``/``euid``/``caps`` default to this machine and this process.
    """
    status = check_target(pid)
    if status.tracer_pid:
        raise AlreadyTraced(f"process {pid} is already traced by pid {status.tracer_pid} "
                            f"({_comm(status.tracer_pid)}): another debugger or tracer holds it; "
                            f"detach that one first (ptrace allows one tracer)")
    caps = _cap_eff() if caps is None else caps
    euid = os.geteuid() if euid is None else euid
    privileged = euid == 0 or bool(caps & (1 << CAP_SYS_PTRACE))
    level = _ptrace_scope() if scope == "read" else scope
    if level == 3:
        raise AccessDenied(pid, "it with ptrace", "kernel.yama.ptrace_scope is 3: attaching is disabled until "
                           "reboot (use the perf backend: --via perf)")
    if level == 2 and not privileged:
        raise AccessDenied(pid, "it with ptrace", "kernel.yama.ptrace_scope is 2: only root or CAP_SYS_PTRACE "
                           "may attach (use the perf backend: --via perf)")
    if level == 1 and not privileged:
        raise AccessDenied(pid, "it with ptrace", "kernel.yama.ptrace_scope is 1: a debugger may attach only to "
                           "its own descendants; run as root, grant CAP_SYS_PTRACE, or sysctl "
                           "kernel.yama.ptrace_scope=0")
    if not privileged and status.uid != euid:
        raise AccessDenied(pid, "it with ptrace", f"it belongs to uid {status.uid}: run as that user or root")
    if shutil.which(gdb) is None:
        raise ToolMissing("gdb", hint="apt-get install gdb (or use the perf backend: --via perf)")
    exe = exe_path_of(pid)
    try:
        info = read_elf_info(exe)
    except OSError as exc:
        raise AccessDenied(pid, f"its executable {exe}", exc.strerror or str(exc)) from None
    if not info.has_debug_info:
        raise NoDebugInfo(f"{exe}: no debug info (built without -g or stripped): gdb could not name the "
                          f"writing line or the locals; rebuild with -g or use the perf backend")
    return exe


# ------------------------------------------------------------------ guardian (SIGKILL of the inspector)

# Self-contained (no imports of ours): runs in its own session so the terminal's SIGINT/SIGHUP do
# not reach it. It watches two things: its stdin (EOF = the inspector is gone, whatever killed it;
# a "d" byte first = gdb detached cleanly) and gdb itself (a pidfd). The danger it exists for: when
# gdb dies WITHOUT detaching (SIGKILL, OOM), the kernel drops the tracer but leaves the debug
# registers ENABLED, and the next write to the watched field kills the engine with SIGTRAP. So as
# soon as gdb is gone uncleanly it seizes each thread for a moment (PTRACE_SEIZE + INTERRUPT),
# clears DR7, swallows a SIGTRAP of ours if one is pending, and detaches; then SIGCONTs the engine
# if it was left group-stopped (and was not stopped before we came).
_GUARDIAN = r"""
import ctypes, os, select, signal, sys, time
for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
    signal.signal(s, signal.SIG_IGN)
target, gdb, was_stopped = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
SEIZE, INTERRUPT, POKEUSER, DETACH, WALL, DR7 = 0x4206, 0x4207, 6, 17, 0x40000000, 848 + 7 * 8
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p)
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):
        return False
def wait_gone(pid, seconds):
    end = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < end:
        time.sleep(0.005)
    return not alive(pid)
def status():
    try:
        with open(f"/proc/{target}/status") as f:
            d = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        return d["State"].split()[0], int(d["TracerPid"])
    except (OSError, KeyError, ValueError):
        return None, 0
def clear_debug_registers():
    wait_gone(gdb, 1.0)
    end = time.monotonic() + 1.0
    while status()[1] != 0 and time.monotonic() < end:  # the kernel is still detaching gdb
        time.sleep(0.002)
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{target}/task")]
    except OSError:
        return
    for tid in tids:
        if libc.ptrace(SEIZE, tid, None, None) != 0:
            continue
        libc.ptrace(INTERRUPT, tid, None, None)
        sig = 0
        try:
            _, st = os.waitpid(tid, WALL)
            if os.WIFSTOPPED(st) and (st >> 16) == 0:  # a signal-delivery-stop: pass it on, unless a trap of ours
                sig = os.WSTOPSIG(st)
                if sig in (signal.SIGTRAP, signal.SIGSTOP):
                    sig = 0
        except ChildProcessError:
            pass
        libc.ptrace(POKEUSER, tid, ctypes.c_void_p(DR7), None)
        libc.ptrace(DETACH, tid, None, ctypes.c_void_p(sig))
try:
    pidfd = os.pidfd_open(gdb)
except (OSError, AttributeError):
    pidfd = None
clean = False
stdin = sys.stdin.fileno()
poller = select.poll()
poller.register(stdin, select.POLLIN)
if pidfd is not None:
    poller.register(pidfd, select.POLLIN)
while True:
    events = dict(poller.poll(200 if pidfd is None else None))
    if stdin in events:
        data = os.read(stdin, 64)
        if not data:
            break  # EOF: the inspector is gone (or done)
        if b"d" in data and not clean:
            clean = True  # gdb detached cleanly: only wait for EOF now
            if pidfd is not None:
                poller.unregister(pidfd)
    if not clean and not alive(gdb):
        break  # gdb died while still attached
if not clean:
    # gdb reads EOF too and detaches by itself; if it hangs: SIGTERM (it detaches on it), then SIGKILL.
    if alive(gdb) and not wait_gone(gdb, 1.0):
        try: os.kill(gdb, signal.SIGTERM)
        except OSError: pass
        if not wait_gone(gdb, 1.0):
            try: os.kill(gdb, signal.SIGKILL)
            except OSError: pass
    clear_debug_registers()  # whether gdb removed its watchpoints or not: a few us per thread
if not was_stopped:
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        state, tracer = status()
        if state is None or state not in "Tt":
            break
        if tracer == 0 and state == "T":
            try: os.kill(target, signal.SIGCONT)
            except OSError: pass
        time.sleep(0.01)
"""


# ------------------------------------------------------------------ results

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


def _controller(command: list[str]):
    """pygdbmi's controller, but gdb in its own session: a terminal's Ctrl-C (SIGINT to the
    foreground group) or the SSH drop (SIGHUP) must reach the inspector, which detaches, not gdb."""
    from pygdbmi.gdbcontroller import GdbController  # imported late: optional at import time
    from pygdbmi.IoManager import IoManager

    class _OwnSessionController(GdbController):
        def spawn_new_gdb_subprocess(self) -> int:
            self.gdb_process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                                                stderr=subprocess.PIPE, bufsize=0, start_new_session=True)
            self.io_manager = IoManager(self.gdb_process.stdin, self.gdb_process.stdout, self.gdb_process.stderr,
                                        self.time_to_check_for_additional_output_sec)
            return self.gdb_process.pid

    # A tiny extra-output wait: we never rely on it, we wait for our token (pygdbmi #37/#66).
    return _OwnSessionController(command, time_to_check_for_additional_output_sec=0.0002)


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
        self.exe = check_attach(pid, gdb=gdb)
        self._was_stopped = read_status(pid).state in ("T", "t")
        self._tokens = itertools.count(1)
        self._lock = threading.RLock()
        self._stops: deque[tuple[float, dict]] = deque()  # (monotonic when read, *stopped payload)
        self._threads: dict[str, int | None] = {}  # gdb thread id -> LWP (None until known)
        self._stopped: set[str] = set()  # gdb thread ids gdb reports stopped
        self._running: set[str] = set()  # gdb thread ids gdb reports running
        self._held: set[str] = set()  # stopped on purpose (stop-on-hit): not auto-resumed
        self._watch: dict[int, Watchpoint] = {}
        self._results: dict[int, dict] = {}  # result records that arrived before we waited for them
        self._last: dict[int, bytes | None] = {}
        self._pauses: list[float] = []
        self._exit_code: str | None = None  # set when the target exited
        self.attached = False
        self.attach_pause_s: float | None = None
        self.detach_pause_s: float | None = None
        self._closed = False
        self._held_since = 0.0
        self.stop_on_hit = False  # True: a hit leaves the writing thread stopped until resume()
        self.max_rate = DEFAULT_MAX_RATE if max_rate is None else float(max_rate)
        self._queue: deque[WatchHit] = deque()
        self._handled = 0  # hits the reader handled (queued)
        self._disarm_after: int | None = None  # hits(count=): delete the watchpoints at this many
        self._cv = threading.Condition()
        self._recent: deque[float] = deque()
        self._disarmed: str | None = None
        self._reader = None
        self._reader_done = False
        self._reader_error: SourceError | None = None
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._guardian: subprocess.Popen | None = None
        self._code = CodeMap(pid) if symbolize else None
        command = [
            shutil.which(gdb) or gdb, "--nx", "--nh", "--quiet", "--interpreter=mi3",
            "-iex", "set auto-load off", "-iex", "set debuginfod enabled off",
            "-iex", "set pagination off", "-iex", "set width 0", "-iex", "set height 0",
            "-iex", "set confirm off",
        ]  # fmt: skip
        try:
            self._ctl = _controller(command)
        except (OSError, ValueError) as exc:
            self._closed = True
            self._code and self._code.close()
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)
            raise ToolFailed(f"cannot start gdb: {exc}") from None
        # gdb SIGKILLed while attached leaves the debug registers enabled (see _GUARDIAN): keep the
        # OOM killer off it when we may (root / CAP_SYS_RESOURCE).
        with contextlib.suppress(OSError):
            with open(f"/proc/{self._ctl.gdb_process.pid}/oom_score_adj", "w") as f:
                f.write("-1000")
        try:
            if guardian:
                self._start_guardian()
            for setting in ("mi-async on", "non-stop on", "can-use-hw-watchpoints 1", "auto-solib-add off",
                            "print thread-events off", "print frame-arguments none"):
                self._request(f"-gdb-set {setting}")
            for sig in ("all", "SIGINT"):
                self._request(f"-interpreter-exec console {_mi_quote(f'handle {sig} nostop noprint pass')}")
            self._request(f"-file-exec-and-symbols {_mi_quote(self.exe)}", timeout=max(timeout, 60.0))
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------- plumbing
    def _start_guardian(self) -> None:
        self._guardian = subprocess.Popen(
            [sys.executable, "-c", _GUARDIAN, str(self.pid), str(self._ctl.gdb_process.pid),
             "1" if self._was_stopped else "0"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def _gdb_alive(self) -> bool:
        proc = getattr(self._ctl, "gdb_process", None) if hasattr(self, "_ctl") else None
        return proc is not None and proc.poll() is None

    def _send(self, *commands: str) -> list[int]:
        if not self._gdb_alive():
            raise ToolFailed("gdb is not running (it exited or was closed)")
        tokens = [next(self._tokens) for _ in commands]
        try:
            self._ctl.write([f"{t}{c}" for t, c in zip(tokens, commands)], read_response=False, timeout_sec=1.0)
        except OSError as exc:
            raise ToolFailed(f"cannot talk to gdb: {exc}") from None
        return tokens

    def _wait(self, token: int, command: str, timeout: float | None = None) -> MiResult:
        early = self._results.pop(token, None)  # read while waiting for an earlier token
        if early is not None:
            return result_of(early, command)
        t = self.timeout if timeout is None else timeout
        return wait_for_token(self._ctl, token, command, time.monotonic() + t, t, on_record=self._on_record)

    def _request(self, command: str, timeout: float | None = None) -> MiResult:
        with self._lock:
            (token,) = self._send(command)
            return self._wait(token, command, timeout)

    def _on_record(self, rec: dict) -> None:
        if rec.get("type") == "result" and isinstance(rec.get("token"), int):
            if len(self._results) < 1000:  # answers nobody waits for any more must not pile up
                self._results[rec["token"]] = rec
            return
        if rec.get("type") != "notify":
            return
        msg, p = rec.get("message"), rec.get("payload") or {}
        if msg == "stopped":
            if p.get("reason", "").startswith("exited"):
                self._exit_code = str(p.get("exit-code", p.get("signal-name", "0")))
            threads = p.get("stopped-threads")
            if isinstance(threads, list):
                self._stopped.update(threads)
                self._running.difference_update(threads)
            elif p.get("thread-id"):
                self._stopped.add(p["thread-id"])
                self._running.discard(p["thread-id"])
            self._stops.append((time.monotonic(), p))
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"s")  # the reader handles it even if the record came with an answer
        elif msg == "running":
            tid = p.get("thread-id")
            if tid == "all":
                self._stopped.clear()
                self._running.update(self._threads)
            else:
                self._stopped.discard(tid)
                self._running.add(tid)
        elif msg == "thread-created":
            self._threads.setdefault(p.get("id"), None)
        elif msg == "thread-exited":
            self._threads.pop(p.get("id"), None)
            self._stopped.discard(p.get("id"))
            self._running.discard(p.get("id"))
        elif msg == "thread-group-exited":
            self._exit_code = str(p.get("exit-code", "0"))

    def _pump(self, seconds: float) -> None:
        """Read async records for up to ``seconds`` (returns as soon as something arrived)."""
        records = self._ctl.get_gdb_response(timeout_sec=max(0.0, seconds), raise_error_on_timeout=False)
        for rec in records:
            self._on_record(rec)
        if not records and not self._gdb_alive():
            raise ToolFailed("gdb exited while watching")

    def _continue(self, *threads: str) -> float:
        """Resume the given gdb threads in one write; returns when gdb said ^running (monotonic)."""
        cmds = [f"-exec-continue --thread {t}" for t in threads]
        with self._lock:
            tokens = self._send(*cmds)
            for tok, cmd in zip(tokens, cmds):
                try:
                    self._wait(tok, cmd)
                except GdbCommandError as exc:
                    if "running" not in exc.gdb_message and "exited" not in exc.gdb_message:
                        raise
            for t in threads:
                self._stopped.discard(t)
                self._held.discard(t)
            return time.monotonic()

    def _refresh_lwps(self) -> None:
        payload = self._request("-thread-info").payload or {}
        for t in payload.get("threads", []):
            m = _LWP_RE.search(t.get("target-id", ""))
            self._threads[t.get("id")] = int(m.group(1)) if m else None

    # ----------------------------------------------------------- attach / detach
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
        """Attach; every thread runs again when this returns. Returns the pause (s) as seen from here.

        ``background`` (default): ``-target-attach PID &``, gdb resumes each thread itself as soon
        as its post-attach work is done (no round trip of ours). Else: wait until gdb reported every
        thread stopped, then ``-exec-continue --all`` (kept for the benchmark's comparison).
        Raises AlreadyTraced/AccessDenied if ptrace refuses after all, ToolFailed on a timeout.
        """
        with self._lock:
            t0 = time.monotonic()
            try:
                self._request(f"-target-attach {self.pid}{' &' if background else ''}")
            except GdbCommandError as exc:
                msg = exc.gdb_message
                if "not permitted" in msg or "ptrace" in msg:
                    st = read_status(self.pid)
                    if st.tracer_pid:
                        raise AlreadyTraced(f"process {self.pid} is already traced by pid {st.tracer_pid} "
                                            f"({_comm(st.tracer_pid)}): ptrace refused") from None
                    raise AccessDenied(self.pid, "it with ptrace", msg) from None
                raise
            self.attached = True
            deadline = time.monotonic() + self.timeout
            if background:
                # Done when gdb says every thread runs; a thread it reports stopped (a signal that
                # arrived during the attach) is resumed by us, the signal passed on.
                while not self._threads or set(self._threads) - self._running:
                    if self._exit_code is not None:
                        raise NoSuchProcess(self.pid, "it exited while gdb attached")
                    if time.monotonic() > deadline:
                        self._continue_all()
                        raise ToolFailed(f"gdb did not resume every thread of {self.pid} within {self.timeout:g} s")
                    stopped = sorted(self._stopped & set(self._threads))
                    if stopped:
                        self._continue(*stopped)
                        self._running.update(stopped)
                    self._pump(_SLICE)
            else:
                # Wait until gdb has reported EVERY thread stopped, then resume them in one request.
                # (Resuming threads one by one as they were reported made gdb lose the stop report of
                # a later thread in our trials, leaving it stopped: never again.)
                while not self._threads or set(self._threads) - self._stopped:
                    if self._exit_code is not None:
                        raise NoSuchProcess(self.pid, "it exited while gdb attached")
                    if time.monotonic() > deadline:
                        self._continue_all()
                        raise ToolFailed(f"gdb did not report every thread of {self.pid} attached within "
                                         f"{self.timeout:g} s")
                    self._pump(_SLICE)
                self._continue_all(strict=True)
            self._stops.clear()  # the attach stops, all handled
            self.attach_pause_s = time.monotonic() - t0
            self._refresh_lwps()
            self._start_reader()
            return self.attach_pause_s

    def _continue_all(self, strict: bool = False) -> None:
        try:
            self._request("-exec-continue --all")
        except SourceError:
            if strict:
                raise
        self._stopped.clear()
        self._held.clear()

    def detach(self) -> float | None:
        """Detach (gdb removes its watchpoints and resumes every thread); returns the pause."""
        self._stop_reader()
        with self._lock:
            if not self.attached:
                return None
            self.attached = False
            if self._exit_code is not None:
                return None
            t0 = time.monotonic()
            try:
                self._request("-target-detach")
            except GdbCommandError as exc:
                if "not being run" not in exc.gdb_message:
                    raise
                return None
            self.detach_pause_s = time.monotonic() - t0
            self._watch.clear()
            return self.detach_pause_s

    def close(self) -> None:
        """Detach if attached, stop gdb, release the guardian. Idempotent; never raises."""
        if self._closed:
            return
        self._closed = True
        clean = not self.attached
        try:
            if self.attached and self._gdb_alive():
                with contextlib.suppress(SourceError, OSError, ValueError):
                    self.detach()
                    clean = True
        finally:  # even a second Ctrl-C during the detach: gdb and the guardian are dealt with
            self._shutdown(clean)

    def _shutdown(self, clean: bool) -> None:
        if clean and self._guardian is not None:
            with contextlib.suppress(OSError, ValueError):
                self._guardian.stdin.write(b"d")  # gdb detached: the guardian has nothing to clean up
                self._guardian.stdin.flush()
        if hasattr(self, "_ctl"):
            quit_gdb(self._ctl)  # gdb quits (and detaches) on -gdb-exit or SIGTERM
        if self._guardian is not None:
            with contextlib.suppress(OSError):
                self._guardian.stdin.close()  # EOF: gdb is gone; it checks the target and exits
            try:
                self._guardian.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._guardian.kill()
                self._guardian.wait()
            self._guardian = None
        self._stop_reader()
        if self._code is not None:
            self._code.close()
            self._code = None
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # ----------------------------------------------------------- watchpoints
    @property
    def watchpoints(self) -> tuple[Watchpoint, ...]:
        return tuple(self._watch.values())

    def _idlest_thread(self) -> str:
        """The gdb thread that costs the engine least to stop for a moment (least CPU so far)."""
        def cpu(lwp: int | None) -> int:
            try:
                with open(f"/proc/{self.pid}/task/{lwp}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                return int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError, TypeError):
                return 1 << 62
        if any(v is None for v in self._threads.values()):
            self._refresh_lwps()
        if not self._threads:
            raise NoSuchProcess(self.pid, "no thread left")
        return min(self._threads, key=lambda t: (cpu(self._threads[t]), int(t)))

    def _with_a_stopped_thread(self, action):
        """Run ``action(thread)`` with one thread stopped (gdb evaluates in a stopped thread's
        context): an already stopped one, else the idlest thread stopped briefly (SIGSTOP by gdb)."""
        with self._lock:  # every send and its wait under one hold: the reader must not take our answer
            return self._with_a_stopped_thread_locked(action)

    def _with_a_stopped_thread_locked(self, action):
        if self._stopped:
            return action(sorted(self._stopped)[0])
        anchor = self._idlest_thread()
        deadline = time.monotonic() + self.timeout
        asked = 0.0
        while anchor not in self._stopped:
            if self._exit_code is not None:
                raise NoSuchProcess(self.pid, "it exited while watched")
            now = time.monotonic()
            if now > deadline:
                raise ToolFailed(f"gdb did not stop thread {anchor} within {self.timeout:g} s")
            if now - asked > _REINTERRUPT:
                # gdb drops an interrupt that races with its own resume of that thread: ask again
                tok = self._send(f"-exec-interrupt --thread {anchor}")
                self._wait(tok[0], "-exec-interrupt")
                asked = now
            self._pump(_SLICE)
        # its *stopped is ours: drop it so hits() does not take it for something else
        self._stops = deque(s for s in self._stops if s[1].get("thread-id") != anchor
                            or s[1].get("reason") in _HIT_REASONS)
        try:
            return action(anchor)
        finally:
            self._continue(anchor)

    def watch(self, spec: WatchSpec) -> Watchpoint:
        """Arm a hardware watchpoint. Raises WatchLimitError (5th one, or gdb would make it a
        software watchpoint), ToolFailed/GdbCommandError."""
        if not self.attached:
            raise ToolFailed("attach first (use the session as a context manager)")
        with self._lock:
            check_budget(len(self._watch))
            expr = f"*({_C_TYPES[spec.length]} *) {spec.address:#x}"

            def insert(thread: str) -> Watchpoint:
                res = self._request(f"-break-watch --thread {thread} {_WATCH_FLAG[spec.access]}{_mi_quote(expr)}")
                body = next((v for k, v in (res.payload or {}).items() if k in ("wpt", "hw-rwpt", "hw-awpt")), {})
                number = int(body.get("number", 0))
                info = self._request(f"-break-info {number}").payload or {}
                rows = info.get("BreakpointTable", {}).get("body", [])
                kind = rows[0].get("type", "") if rows else ""
                if kind not in ("hw watchpoint", "read watchpoint", "acc watchpoint"):
                    self._request(f"-break-delete {number}")
                    raise WatchLimitError(f"gdb would watch {spec.label} in software ({kind or 'unknown'}), "
                                          f"single-stepping the engine: refused")
                return Watchpoint(number, spec, kind)

            wp = self._with_a_stopped_thread(insert)
            try:
                self._last[wp.number] = read_memory(self.pid, spec.address, spec.length)
            except SourceError:
                self._last[wp.number] = None
            self._watch[wp.number] = wp
            return wp

    def unwatch(self, wp: Watchpoint) -> None:
        with self._lock:
            if self._watch.pop(wp.number, None) is not None:
                self._with_a_stopped_thread(lambda _t: self._request(f"-break-delete {wp.number}"))

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
        out = self._ctl.gdb_process.stdout.fileno()
        try:
            while not self._reader_stop:
                readable, _, _ = select.select([out, self._wake_r], [], [], 0.25)
                if self._wake_r in readable:
                    with contextlib.suppress(OSError):
                        os.read(self._wake_r, 4096)
                if self._reader_stop:
                    break
                with self._lock:
                    if out in readable:
                        self._pump(0)
                    self._process_stops()
                if self._exit_code is not None:
                    break
        except (SourceError, OSError, ValueError) as exc:
            self._reader_error = exc if isinstance(exc, SourceError) else ToolFailed(f"gdb: {exc}")
        finally:
            with self._cv:
                self._reader_done = True
                self._cv.notify_all()

    def _process_stops(self) -> None:
        """Handle the stops gdb reported (lock held): queue hits, resume what is not ours to hold."""
        while self._stops and self.attached:
            t_stop, p = self._stops.popleft()
            tid = p.get("thread-id")
            wpt = p.get("wpt") or p.get("hw-awpt") or p.get("hw-rwpt") or {}
            if p.get("reason") in _HIT_REASONS and int(wpt.get("number", 0)) in self._watch:
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
            elif self._exit_code is None and tid and tid in self._stopped and tid not in self._held:
                self._continue(tid)  # any other stop is not the user's business: never leave a thread stopped
        if self._exit_code is not None:
            with self._cv:
                self._cv.notify_all()

    def _guard(self, hit: WatchHit) -> None:
        if not self.max_rate or self._disarmed:
            return
        now = time.monotonic()
        self._recent.append(now)
        while self._recent and self._recent[0] < now - 1.0:
            self._recent.popleft()
        if len(self._recent) > self.max_rate:
            paused = sum(self._pauses[-len(self._recent):])
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
        return None if hit is None else self._symbolised(hit)  # outside every lock: the reader goes on

    def _next_raw_hit(self, deadline: float | None) -> WatchHit | None:
        with self._cv:
            while True:
                if self._queue:
                    return self._queue.popleft()
                if self._disarmed:
                    raise HotField(self._disarmed)
                if self._exit_code is not None:
                    self.attached = False
                    raise NoSuchProcess(self.pid, f"it exited while watched (exit code {self._exit_code})")
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
        """
        with self._lock:
            if not self.attached:
                raise ToolFailed("not attached")
            t0 = time.monotonic()
            self._request("-exec-interrupt --all")
            wanted = set(self._threads)
            self._held.update(wanted)  # from now on the reader leaves them stopped
            deadline = time.monotonic() + self.timeout
            while wanted - self._stopped:
                if self._exit_code is not None:
                    raise NoSuchProcess(self.pid, "it exited while watched")
                if time.monotonic() > deadline:
                    self._continue_all()
                    raise ToolFailed(f"gdb did not stop every thread of {self.pid} within {self.timeout:g} s")
                self._pump(_SLICE)
                wanted &= set(self._threads)  # a thread may exit meanwhile
            self._stops = deque(x for x in self._stops if x[1].get("reason") in _HIT_REASONS)
            self._held_since = t0
            return sorted(lwp for t, lwp in self._threads.items() if t in wanted and lwp is not None)

    def resume(self) -> float | None:
        """Resume the threads a stop-on-hit or interrupt() left stopped; returns that pause (s) if any."""
        with self._lock:
            held = sorted(self._held)
            if not held:
                return None
            t_stop = self._held_since
            t_run = self._continue(*held)
            self._pauses.append(t_run - t_stop)
            return t_run - t_stop

    def _hit(self, t_stop: float, p: dict, resume: bool) -> WatchHit:
        wpt = p.get("wpt") or p.get("hw-awpt") or p.get("hw-rwpt") or {}
        wp = self._watch[int(wpt.get("number", 0))]
        tid = p.get("thread-id", "")
        spec = wp.spec
        new = None
        with contextlib.suppress(SourceError):
            new = read_memory(self.pid, spec.address, spec.length)  # the thread is stopped at the write
        cmds = [f"-stack-list-frames --thread {tid} 0 {self.backtrace_depth - 1}"]
        if self._threads.get(tid) is None:
            cmds.append(f"-thread-info {tid}")
        if resume:
            cmds.append(f"-exec-continue --thread {tid}")
        tokens = self._send(*cmds)
        results: list[MiResult | None] = []
        for tok, cmd in zip(tokens, cmds):
            try:
                results.append(self._wait(tok, cmd))
            except GdbCommandError:
                results.append(None)
        pause = None
        if resume:
            self._stopped.discard(tid)
            pause = time.monotonic() - t_stop
            self._pauses.append(pause)
        else:
            self._held.add(tid)
            self._held_since = t_stop
        if len(cmds) > 1 and cmds[1].startswith("-thread-info") and results[1] is not None:
            for t in (results[1].payload or {}).get("threads", []):
                m = _LWP_RE.search(t.get("target-id", ""))
                self._threads[t.get("id")] = int(m.group(1)) if m else None
        frames = (results[0].payload or {}).get("stack", []) if results[0] is not None else []
        value = p.get("value") or {}
        # gdb's own old value is exact (it keeps the value it last saw); ours is a fallback
        old = _value_bytes(value.get("old"), spec.length) or self._last.get(wp.number)
        if new is not None:
            self._last[wp.number] = new
        # Symbolised later, by the consumer (next_hit): addr2line/objdump must never delay the
        # handling of the next stop, which would keep a thread of the engine stopped meanwhile.
        return WatchHit(
            time=time.time() - (time.monotonic() - t_stop),
            spec=spec,
            tid=self._threads.get(tid), old=old, new=new, new_read_after=False,
            location=None, backtrace=(), pause_s=pause, backend="gdb",
            extra={"gdb_thread": tid, "gdb_old": value.get("old"), "gdb_new": value.get("new", value.get("value")),
                   "stopped": not resume, "gdb_frames": [p.get("frame") or {}] + frames},
        )  # fmt: skip

    def _symbolised(self, hit: WatchHit) -> WatchHit:
        frames = hit.extra.pop("gdb_frames", None)
        if frames is None:
            return hit
        location, backtrace = self._frames(frames[0], frames[1:])
        return dataclasses.replace(hit, location=location, backtrace=backtrace)

    def _frames(self, top: dict, stack: list[dict]) -> tuple[Frame | None, tuple[Frame, ...]]:
        addrs: list[int] = []
        for f in ([top] if top else []) + [s for s in stack]:
            with contextlib.suppress(KeyError, ValueError, TypeError):
                a = int(f["addr"], 16)
                if a and (not addrs or addrs[-1] != a):  # inlined frames share their caller's pc
                    addrs.append(a)
        if not addrs:
            return None, ()
        if self._code is not None:
            with contextlib.suppress(SourceError):
                return self._code.hit_frames(addrs[0], addrs[1:])
        gdb_frames = tuple(Frame(int(f["addr"], 16), f.get("func"), None, f.get("fullname") or f.get("file"),
                                 int(f["line"]) if f.get("line") else None) for f in stack if f.get("addr"))
        return (gdb_frames[0] if gdb_frames else Frame(addrs[0], None)), gdb_frames

    # ----------------------------------------------------------- read-only inspection
    def evaluate(self, expression: str, *, thread: str | None = None) -> str:
        """Evaluate a user expression (checked by exprguard first) in a stopped thread."""
        expr = _mi_quote(check_expression(expression, allow_writes=self.allow_writes))

        def run(t: str) -> str:  # user text is concatenated, never passed through str.format
            return str((self._request(f"-data-evaluate-expression --thread {t} " + expr).payload or {}).get("value", ""))

        return run(thread) if thread is not None else self._with_a_stopped_thread(run)

    def console(self, command: str, *, thread: str | None = None) -> str:
        """Run a read-only gdb CLI command (checked by exprguard first); returns what it printed."""
        text = _mi_quote(check_command(command, allow_writes=self.allow_writes))

        def run(t: str) -> str:
            return self._request(f"-interpreter-exec --thread {t} console " + text).console

        return run(thread) if thread is not None else self._with_a_stopped_thread(run)

    @property
    def stats(self) -> SessionStats:
        return SessionStats(self.attach_pause_s, tuple(self._pauses), self.detach_pause_s)
