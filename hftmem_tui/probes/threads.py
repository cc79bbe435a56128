"""Per-thread CPU time of a target, to tell its hot (busy-polling) threads from the others."""

from __future__ import annotations

from hftmem_tui.errors import SourceError
from hftmem_tui.sources import procfs

__all__ = ["thread_cpu_ticks"]


def thread_cpu_ticks(pid: int) -> dict[int, tuple[str, int]]:
    """tid -> (thread name, utime+stime in clock ticks) from /proc/PID/task/*/stat.

    Threads that exit while we read are left out. Raises NoSuchProcess, AccessDenied.
    """
    out = {}
    for tid in procfs.list_tasks(pid):
        try:
            st = procfs.read_task_stat(pid, tid)
        except (SourceError, ValueError):
            continue  # the thread exited between the listing and the read
        out[tid] = (st.comm, st.utime_ticks + st.stime_ticks)
    return out
