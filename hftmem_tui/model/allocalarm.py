"""Hot-path allocation alarms: per-thread allocation rates, hot-thread suggestion, alarms.

Pure Python over counts a source produced (uprobes.AllocProbes.counts(), thread CPU ticks):
no process, no I/O, unit-tested on plain dicts.

The rule an HFT engineer applies: after warm-up, a thread on the hot path must not call the
allocator at all. Any call of malloc/free/calloc/realloc/new/delete on a thread marked hot,
counted after the warm-up, is an alarm (a free counts too: it takes the allocator's locks and
returns memory that was allocated on the hot path).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ThreadAllocs",
    "AllocAlarm",
    "AllocReport",
    "cpu_fractions",
    "suggest_hot",
    "window",
    "build_report",
]

@dataclass(frozen=True, slots=True)
class ThreadAllocs:
    """Allocator calls of one thread over a window."""

    tid: int
    name: str
    seconds: float
    calls: dict[str, int]  # function -> calls in the window
    cpu_fraction: float | None = None  # of one core, over the same window
    hot: bool = False

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def rate_hz(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0

    def rate(self, function: str) -> float:
        return self.calls.get(function, 0) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class AllocAlarm:
    """A hot thread called the allocator after warm-up."""

    tid: int
    name: str
    calls: dict[str, int]
    rate_hz: float

    def __str__(self) -> str:
        what = ", ".join(f"{f} {n:,}" for f, n in sorted(self.calls.items(), key=lambda kv: -kv[1]) if n)
        return (f"ALARM: hot thread {self.tid} ({self.name}) called the allocator {sum(self.calls.values()):,} "
                f"times ({self.rate_hz:,.0f}/s) after warm-up: {what}")


@dataclass(frozen=True, slots=True)
class AllocReport:
    threads: tuple[ThreadAllocs, ...]
    alarms: tuple[AllocAlarm, ...]
    hot: tuple[int, ...]
    seconds: float
    calls_per_s: float  # all probed calls, all threads: what the probes cost is this x cost per call
    cost_per_call_s: float | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def cost_fraction(self) -> float | None:
        """What counting costs the target, as a fraction of one core."""
        return None if self.cost_per_call_s is None else self.calls_per_s * self.cost_per_call_s


def window(before: dict[int, dict[str, int]], after: dict[int, dict[str, int]]) -> dict[int, dict[str, int]]:
    """Per-thread, per-function calls between two cumulative count snapshots (new threads count from 0)."""
    out: dict[int, dict[str, int]] = {}
    for tid, per in after.items():
        base = before.get(tid, {})
        out[tid] = {f: max(0, n - base.get(f, 0)) for f, n in per.items()}
    return out


def cpu_fractions(before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]], seconds: float,
                  clk_tck: int = 100) -> dict[int, float]:
    """tid -> fraction of one core used between two (name, utime+stime ticks) snapshots."""
    if seconds <= 0:
        return {}
    return {tid: max(0, ticks - before.get(tid, (name, ticks))[1]) / clk_tck / seconds
            for tid, (name, ticks) in after.items() if tid in before}


def suggest_hot(cpu: dict[int, float], *, min_fraction: float = 0.5, max_threads: int = 4) -> list[int]:
    """The busiest threads, the ones an engineer would call the hot path: those using at least
    ``min_fraction`` of a core (busy-polling loops), busiest first; else the single busiest."""
    ranked = sorted(cpu.items(), key=lambda kv: (-kv[1], kv[0]))
    busy = [tid for tid, frac in ranked if frac >= min_fraction][:max_threads]
    if busy:
        return busy
    return [ranked[0][0]] if ranked and ranked[0][1] > 0 else []


def build_report(calls: dict[int, dict[str, int]], names: dict[int, str], seconds: float, hot: list[int] | set[int],
                 *, cpu: dict[int, float] | None = None, cost_per_call_s: float | None = None,
                 notes: tuple[str, ...] = ()) -> AllocReport:
    """Threads sorted by allocator calls (then tid), with an alarm per hot thread that made any."""
    hot_set = set(hot)
    threads = tuple(sorted(
        (ThreadAllocs(tid, names.get(tid, "?"), seconds, dict(per), (cpu or {}).get(tid), tid in hot_set)
         for tid, per in calls.items()),
        key=lambda t: (-t.total, t.tid),
    ))  # fmt: skip
    alarms = tuple(AllocAlarm(t.tid, t.name, {f: n for f, n in t.calls.items() if n}, t.rate_hz)
                   for t in threads if t.hot and t.total > 0)
    total = sum(t.total for t in threads)
    return AllocReport(threads, alarms, tuple(sorted(hot_set)), seconds, total / seconds if seconds > 0 else 0.0,
                       cost_per_call_s, notes)
