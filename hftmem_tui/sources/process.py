"""psutil for what it does well: one process's identity, CPU, memory summary and fds; the
per-thread CPU times come from procfs' one task-stat reader. Plus the helpers for children we
start (stop_child, die_with_parent).

Only the one target pid is ever queried (glances' cost came from iterating every process).
psutil is imported where it is used: the child helpers serve modules (perf, gdb) that must
import without it.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass

from hftmem_tui.errors import AccessDenied, NoSuchProcess, ZombieProcess
from hftmem_tui.sources.procfs import PERMISSION_HINT, PROCFS, list_tasks, read_task_stat


@dataclass(frozen=True, slots=True)
class ThreadTimes:
    id: int
    user_time: float
    system_time: float


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One psutil sample of the target. uss/pss are None unless the sample was ``full``."""

    pid: int
    name: str
    cmdline: tuple[str, ...]
    exe: str | None
    username: str | None
    create_time: float
    cpu_percent: float
    rss: int
    vms: int
    uss: int | None
    pss: int | None
    swap: int | None
    num_threads: int
    threads: tuple[ThreadTimes, ...]
    open_files: int | None
    num_fds: int | None


def _optional(fn):
    """Fields some targets refuse to non-root callers (exe, fds): None instead of failing."""
    import psutil

    try:
        return fn()
    except psutil.AccessDenied:
        return None


class ProcessProbe:
    """Keeps one psutil.Process so cpu_percent() measures since the previous sample.

    Raises NoSuchProcess / ZombieProcess / AccessDenied from the constructor and from sample().
    """

    def __init__(self, pid: int, full: bool = False, *, procfs: str = PROCFS) -> None:
        import psutil

        self.pid = pid
        self.full = full
        self.procfs = procfs  # for the per-thread stat files (psutil reads the rest)
        with self._mapped("process"):
            self._proc = psutil.Process(pid)
            self._proc.cpu_percent(None)  # primes the counter: the first real value is the next call

    def _mapped(self, what: str):
        return _PsutilErrors(self.pid, what)

    def sample(self, full: bool | None = None) -> ProcessInfo:
        """One sample. ``full=True`` adds uss/pss/swap via memory_full_info(), which reads
        /proc/PID/smaps: a page-table walk under the target's mmap lock (about 35 ms at 5,000
        mappings), so it is off by default and should run on demand, not at the refresh rate.
        """
        full = self.full if full is None else full
        p = self._proc
        with self._mapped("process information"), p.oneshot():
            name = p.name()
            cmdline = tuple(p.cmdline())
            create_time = p.create_time()
            cpu = p.cpu_percent(None)
            if full:
                mem = p.memory_full_info()
                uss, pss, swap = mem.uss, getattr(mem, "pss", None), getattr(mem, "swap", None)
            else:
                mem = p.memory_info()
                uss = pss = swap = None
            threads = thread_times(self.pid, self.procfs)
            num_threads = p.num_threads()
            exe = _optional(p.exe) or None
            username = _optional(p.username)
            open_files = _optional(lambda: len(p.open_files()))
            num_fds = _optional(p.num_fds)
        return ProcessInfo(
            pid=self.pid, name=name, cmdline=cmdline, exe=exe, username=username,
            create_time=create_time, cpu_percent=cpu, rss=mem.rss, vms=mem.vms, uss=uss,
            pss=pss, swap=swap, num_threads=num_threads, threads=threads,
            open_files=open_files, num_fds=num_fds,
        )


def thread_times(pid: int, procfs: str = PROCFS) -> tuple[ThreadTimes, ...]:
    """User and system CPU seconds of each thread of pid, by tid (threads that exit meanwhile
    are left out). Raises NoSuchProcess, AccessDenied."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = []
    for tid in list_tasks(pid, procfs):
        try:
            st = read_task_stat(pid, tid, procfs)
        except NoSuchProcess:
            continue  # the thread exited between the listing and its stat
        out.append(ThreadTimes(tid, st.utime_ticks / ticks, st.stime_ticks / ticks))
    return tuple(out)


class _PsutilErrors:
    """Context manager turning psutil's errors into ours (ZombieProcess first: it subclasses)."""

    def __init__(self, pid: int, what: str) -> None:
        self.pid, self.what = pid, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            return False
        import psutil

        if issubclass(exc_type, psutil.ZombieProcess):
            raise ZombieProcess(self.pid) from exc
        if issubclass(exc_type, psutil.NoSuchProcess):
            raise NoSuchProcess(self.pid) from exc
        if issubclass(exc_type, psutil.AccessDenied):
            raise AccessDenied(self.pid, self.what, PERMISSION_HINT) from exc
        return False


def stop_child(proc: subprocess.Popen, timeout: float = 2.0) -> None:
    """SIGTERM a child we started, SIGKILL it if it has not exited within ``timeout``; always reaped."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a forked child (``preexec_fn``): ask the kernel for SIGKILL when our parent thread dies."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
