"""The one sample type: what the live sampler produces, `hftmem snapshot` prints, recordings hold
and replay reads back. Plain frozen dataclasses, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hftmem_tui import __version__
from hftmem_tui.model.allocators import ArenaView, PoolView, RingView
from hftmem_tui.model.decode import EngineStats
from hftmem_tui.sources import procfs
from hftmem_tui.sources.process import ProcessInfo


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """Who is being sampled: the facts that do not change while it runs.

    ``(pid, start_ticks)`` names one process for good: a pid is reused, its start time in
    /proc/PID/stat (clock ticks after boot) is not. 0 when unknown (an old recording).
    """

    pid: int
    comm: str
    exe: str | None
    cmdline: tuple[str, ...]
    username: str | None
    create_time: float
    host: str
    sched: procfs.SchedInfo
    engine: bool  # the demo engine's stats block was found
    hftmem_version: str = __version__
    start_ticks: int = 0


@dataclass(frozen=True, slots=True)
class PerfInterval:
    """perf counts summed over the ``perf stat -I`` intervals that ended since the last sample."""

    timestamp_s: float  # perf's elapsed time at the last interval
    span_s: float  # how much counting time the values cover
    intervals: int
    values: dict[str, float]
    unsupported: frozenset[str]
    not_counted: frozenset[str]


Allocator = PoolView | ArenaView | RingView


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of one target. The slow parts (rollup, mappings, numa) are None when their
    cadence did not read them this time; a snapshot reads them all. ``cost_ms``: our own read
    time per source; ``notes``: why a part is missing or what changed (perf killed, exec)."""

    target: TargetInfo
    seq: int
    time: float
    status: procfs.Status
    stat: procfs.Stat
    process: ProcessInfo
    rollup: procfs.Rollup | None
    mappings: tuple[procfs.Mapping, ...] | None
    perf: PerfInterval | None
    engine: EngineStats | None
    allocators: tuple[Allocator, ...]
    cost_ms: dict[str, float]
    notes: tuple[str, ...] = field(default=())
    numa: tuple[procfs.NumaNode, ...] | None = None

    @property
    def pid(self) -> int:
        return self.target.pid

    @property
    def sched(self) -> procfs.SchedInfo:
        return self.target.sched
