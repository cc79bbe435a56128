"""Per-thread allocator call counters on a running process through uprobes: opt-in, no ptrace.

One *counting* perf event per (thread, probe): exact per thread, and only this process pays.
Each probed call costs the target a trap (a few us in this VM, measured by
calibration.cost_per_call), which is why this is opt-in and why call chains are only sampled on
the threads the user marked hot, and only briefly (offenders.py). The probes are removed on
close, and by the uprobe group's guardian when hftmem dies without closing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading

from hftmem_tui.errors import AccessDenied, ProbeError, SourceError
from hftmem_tui.sources import procfs
from hftmem_tui.sources.codemap import CodeMap
from hftmem_tui.sources.perf.abi import read_count
from hftmem_tui.sources.perf.uprobes import UprobeGroup, open_counter, remove_stale_groups, signals_deferred
from hftmem_tui.probes.offenders import Offender, sample_offenders
from hftmem_tui.probes.plan import ProbeSpec, plan_alloc_probes

__all__ = ["AllocProbes"]


class AllocProbes:
    """Per-thread allocation counters on ``pid`` through uprobes. Use as a context manager.

    Raises TracefsMissing, AccessDenied (not root), ProbeError, NoSuchProcess. ``notes`` lists
    functions that could not be probed (one line each); the others still count.
    """

    def __init__(self, pid: int, *, group: str | None = None, guardian: bool = True) -> None:
        self.pid = pid
        self._group = UprobeGroup(group, guardian=guardian, pid=pid)
        self.tracefs, self.group = self._group.tracefs, self._group.group
        self.stale_removed = remove_stale_groups(self.tracefs)
        self.specs: list[ProbeSpec]
        self.specs, self.notes = plan_alloc_probes(pid)
        if not self.specs:
            raise ProbeError(f"nothing to probe in process {pid}: " + "; ".join(self.notes))
        self._fds: dict[tuple[int, str], int] = {}  # (tid, event) -> counting fd
        self._gone: dict[int, dict[str, int]] = {}  # final counts of threads that exited
        self._ids: dict[str, int] = {}  # event -> tracepoint id
        self._names: dict[int, str] = {}
        self._closed = False
        self._lock = threading.Lock()
        try:
            for spec in self.specs:
                self._ids[spec.event] = self._group.define(spec.event, spec.path, spec.offset)
            self.refresh_threads()
        except BaseException:
            self.close()
            raise

    def refresh_threads(self) -> dict[int, str]:
        """Open counters on threads created since the last call; keep the counts of exited ones.
        Returns tid -> thread name. Raises NoSuchProcess, AccessDenied, ProbeError."""
        with self._lock:
            if self._closed:
                return dict(self._names)
            tids = set(procfs.list_tasks(self.pid))
            for (tid, event), fd in list(self._fds.items()):
                if tid not in tids:
                    with contextlib.suppress(OSError):
                        self._gone.setdefault(tid, {})[event] = read_count(fd)
                    os.close(fd)
                    del self._fds[(tid, event)]
            for tid in sorted(tids):
                try:
                    self._names[tid] = procfs.read_comm(self.pid, tid)
                except SourceError:
                    continue  # the thread exited
                self._open_counters(tid)
            return dict(self._names)

    def _open_counters(self, tid: int) -> None:
        for spec in self.specs:
            if (tid, spec.event) in self._fds:
                continue
            try:
                with signals_deferred():  # an fd lost to SIGTERM would keep the probe busy
                    self._fds[(tid, spec.event)] = open_counter(self._ids[spec.event], tid)
            except OSError as exc:
                if exc.errno == errno.ESRCH:
                    return  # the thread exited
                if exc.errno in (errno.EACCES, errno.EPERM):
                    raise AccessDenied(self.pid, "uprobe events", "run as root") from None
                raise ProbeError(f"cannot count {spec.symbol} on thread {tid}: {exc.strerror}") from None

    # ----------------------------------------------------------- reading
    @property
    def thread_names(self) -> dict[int, str]:
        """tid -> thread name of every thread seen (exited ones included)."""
        return dict(self._names)

    @property
    def events_open(self) -> int:
        """Counting perf events open on the target now (one per live thread and probe)."""
        with self._lock:
            return len(self._fds)

    def counts(self) -> dict[int, dict[str, int]]:
        """tid -> function -> calls since the probes were armed (exited threads included)."""
        by_event = {s.event: s.function for s in self.specs}
        out: dict[int, dict[str, int]] = {}
        with self._lock:
            for tid, per in self._gone.items():
                for event, n in per.items():
                    f = out.setdefault(tid, {})
                    f[by_event[event]] = f.get(by_event[event], 0) + n
            for (tid, event), fd in self._fds.items():
                try:
                    n = read_count(fd)
                except OSError:
                    continue
                f = out.setdefault(tid, {})
                f[by_event[event]] = f.get(by_event[event], 0) + n
        return out

    def sample_offenders(self, tids: list[int], *, duration: float = 0.5, max_per_function: int = 3,
                         code: CodeMap | None = None) -> list[Offender]:
        """Call chains of the first allocations on ``tids``, sampled for at most ``duration`` s.

        Sampling costs more than counting (a call chain per call), so it runs only on the given
        threads and stops as soon as ``max_per_function`` chains per function are in.
        """
        probes = [(spec, self._ids[spec.event]) for spec in self.specs]
        return sample_offenders(self.pid, probes, tids, duration=duration, max_per_function=max_per_function,
                                code=code)

    # ----------------------------------------------------------- teardown
    def close(self) -> None:
        """Close every counter (unhooks the target at once) and remove this session's probes."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in self._fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds.clear()
        self._group.close()

    def __enter__(self) -> AllocProbes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
