"""The guardian: leaves the target running and untraced when hftmem or gdb dies under a watch.

Run as ``python -m hftmem_tui.sources.gdb.guardian TARGET_PID GDB_PID WAS_STOPPED`` (Guardian
below starts it), in its own session so the terminal's SIGINT/SIGHUP do not reach it; it
ignores SIGINT, SIGHUP and SIGTERM. It watches two things: its stdin (EOF = the inspector is
gone, whatever killed it; a "d" byte first = gdb detached cleanly) and gdb itself (a pidfd).

The danger it exists for: when gdb dies WITHOUT detaching (SIGKILL, OOM), the kernel drops the
tracer but leaves the debug registers ENABLED, and the next write to the watched field kills
the engine with SIGTRAP. So as soon as gdb is gone uncleanly it seizes each thread for a moment
(PTRACE_SEIZE + INTERRUPT), clears DR7, swallows a SIGTRAP of ours if one is pending, and
detaches; then SIGCONTs the engine if it was left group-stopped (and was not stopped before we
came). If the inspector died and gdb hangs, it terminates gdb (SIGTERM: gdb detaches), then
kills it.

It outlives hftmem, so it imports nothing heavy: the standard library and procfs only.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import subprocess
import sys
import time

from hftmem_tui.errors import SourceError, ToolFailed
from hftmem_tui.sources import procfs

__all__ = ["Guardian", "MODULE", "main"]

MODULE = "hftmem_tui.sources.gdb.guardian"
PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_POKEUSER, PTRACE_DETACH = 0x4206, 0x4207, 6, 17
WALL = 0x40000000  # __WALL: wait for threads too
DR7 = 848 + 7 * 8  # offsetof(struct user, u_debugreg[7]) on x86-64
READY = b"r"  # written to stdout once the guardian watches gdb
DETACHED = b"d"  # read from stdin: gdb detached cleanly, nothing to clean up


# ------------------------------------------------------------------ the guardian process

def _alive(pid: int) -> bool:
    try:
        return procfs.read_stat(pid).state not in "ZX"
    except (SourceError, ValueError, IndexError):
        return False


def _wait_gone(pid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < end:
        time.sleep(0.005)
    return not _alive(pid)


def _target_status(target: int) -> tuple[str | None, int]:
    """(state letter, TracerPid) of the target; (None, 0) once it is gone."""
    try:
        st = procfs.read_status(target)
    except (SourceError, ValueError):
        return None, 0
    return st.state, st.tracer_pid


@functools.lru_cache(maxsize=1)
def _libc():
    import ctypes  # loaded once at start (main), so the cleanup path is syscalls only

    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p)
    return libc, ctypes.c_void_p


def clear_debug_registers(target: int, gdb: int) -> None:
    """Seize each thread of ``target`` for a moment and clear its DR7 (gdb died uncleanly)."""
    _wait_gone(gdb, 1.0)
    end = time.monotonic() + 1.0
    while _target_status(target)[1] != 0 and time.monotonic() < end:  # the kernel is still detaching gdb
        time.sleep(0.002)
    try:
        tids = procfs.list_tasks(target)
    except SourceError:
        return
    libc, pointer = _libc()
    for tid in tids:
        if libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0:
            continue
        libc.ptrace(PTRACE_INTERRUPT, tid, None, None)
        sig = 0
        try:
            _, st = os.waitpid(tid, WALL)
            if os.WIFSTOPPED(st) and (st >> 16) == 0:  # a signal-delivery-stop: pass it on, unless a trap of ours
                sig = os.WSTOPSIG(st)
                if sig in (signal.SIGTRAP, signal.SIGSTOP):
                    sig = 0
        except ChildProcessError:
            pass
        libc.ptrace(PTRACE_POKEUSER, tid, pointer(DR7), None)
        libc.ptrace(PTRACE_DETACH, tid, None, pointer(sig))


def _watch(gdb: int) -> bool:
    """Wait until the inspector is gone (stdin EOF) or gdb died while attached. True: gdb had
    detached cleanly first."""
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
    with contextlib.suppress(OSError):
        os.write(sys.stdout.fileno(), READY)
    while True:
        events = dict(poller.poll(200 if pidfd is None else None))
        if stdin in events:
            data = os.read(stdin, 64)
            if not data:
                return clean  # EOF: the inspector is gone (or done)
            if DETACHED in data and not clean:
                clean = True  # gdb detached cleanly: only wait for EOF now
                if pidfd is not None:
                    poller.unregister(pidfd)
        if not clean and not _alive(gdb):
            return False  # gdb died while still attached


def _stop_gdb(gdb: int) -> None:
    """gdb reads EOF too and detaches by itself; if it hangs: SIGTERM (it detaches on it), then SIGKILL."""
    if _alive(gdb) and not _wait_gone(gdb, 1.0):
        with contextlib.suppress(OSError):
            os.kill(gdb, signal.SIGTERM)
        if not _wait_gone(gdb, 1.0):
            with contextlib.suppress(OSError):
                os.kill(gdb, signal.SIGKILL)


def _continue_if_group_stopped(target: int, settle: float = 0.0) -> None:
    """SIGCONT the target while it is group-stopped with no tracer (for a second at most); done
    once it has been seen running for ``settle`` seconds. After our own PTRACE_DETACH a
    group-stopped thread is woken and stops AGAIN a moment later: a single look would miss that."""
    end = time.monotonic() + 1.0 + settle
    running_since: float | None = None
    while time.monotonic() < end:
        state, tracer = _target_status(target)
        if state is None:
            break
        if state not in "Tt":
            running_since = time.monotonic() if running_since is None else running_since
            if time.monotonic() - running_since >= settle:
                break
        else:
            running_since = None
            if tracer == 0 and state == "T":
                with contextlib.suppress(OSError):
                    os.kill(target, signal.SIGCONT)
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    """The guardian's life: ``argv`` is TARGET_PID GDB_PID WAS_STOPPED ("1" or "0")."""
    for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)
    args = sys.argv[1:] if argv is None else argv
    target, gdb, was_stopped = int(args[0]), int(args[1]), args[2] == "1"
    _libc()  # before watching: a debug register left armed must be cleared within milliseconds, not an import
    clean = _watch(gdb)
    if not clean:
        _stop_gdb(gdb)
        clear_debug_registers(target, gdb)  # whether gdb removed its watchpoints or not: a few us per thread
    if not was_stopped:
        _continue_if_group_stopped(target, settle=0.0 if clean else 0.3)
    return 0


# ------------------------------------------------------------------ hftmem's side

class Guardian:
    """The guardian of one gdb session, seen from hftmem: start(), then gdb_detached() once gdb
    detached cleanly, release() when gdb is gone. Raises ToolFailed if it cannot start."""

    def __init__(self, target: int, gdb_pid: int, was_stopped: bool) -> None:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        env = dict(os.environ)  # this very hftmem_tui, whatever the current directory holds
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", MODULE, str(target), str(gdb_pid), "1" if was_stopped else "0"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
                cwd="/", env=env)  # fmt: skip
        except OSError as exc:
            raise ToolFailed(f"cannot start the gdb guardian: {exc}") from None

    @property
    def pid(self) -> int:
        return self._proc.pid

    def poll(self) -> int | None:
        """The guardian's exit status, None while it runs."""
        return self._proc.poll()

    def wait_ready(self, timeout: float) -> None:
        """Return once the guardian watches gdb. Raises ToolFailed (and stops it) if it did not
        say so within ``timeout`` seconds: no attach without a guardian."""
        out = self._proc.stdout
        readable, _, _ = select.select([out], [], [], timeout)
        data = os.read(out.fileno(), 1) if readable else b""
        out.close()
        if data != READY:
            self._proc.kill()
            self._proc.wait()
            raise ToolFailed(f"the gdb guardian (python -m {MODULE}) did not start within {timeout:g} s")

    def gdb_detached(self) -> None:
        """Tell the guardian gdb detached cleanly: it has nothing to clean up."""
        with contextlib.suppress(OSError, ValueError):
            self._proc.stdin.write(DETACHED)
            self._proc.stdin.flush()

    def release(self, timeout: float = 5.0) -> None:
        """EOF on its stdin (gdb is gone): it checks the target and exits; killed if it overstays."""
        for stream in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


if __name__ == "__main__":
    sys.exit(main())
