"""What observing costs: the inspector's own CPU, its /proc read time per second, its perf events.

Pure Python over figures the UI hands in (process CPU seconds, a sample's ``cost_ms``, the
watch and allocation panes' armed events), so it is unit-testable with plain numbers. The UI
shows the result on one line (issue 9 item 5: the user sees what observing costs).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["ArmedEvents", "ObserveCost", "CostLine"]

WINDOW_S = 10.0  # rates over the last 10 s: steady enough to read, recent enough to follow a change


@dataclass(frozen=True, slots=True)
class ArmedEvents:
    """Perf events one feature holds on the target, and how often they fire."""

    what: str  # "watch hftmem_engine_stats.ticks", "uprobes"
    events: int  # perf events open (per thread and CPU for a breakpoint)
    rate_hz: float  # hits or probed calls per second
    engine_fraction: float | None = None  # what they cost the target, fraction of one core


@dataclass(frozen=True, slots=True)
class CostLine:
    cpu_fraction: float | None  # of one core, this process (all its threads)
    read_ms_per_s: float | None  # /proc reads (status, smaps_rollup, smaps, engine block)
    rollup_ms_per_s: float | None  # of which smaps_rollup + smaps: page-table walks under the mmap lock
    armed: tuple[ArmedEvents, ...]

    @property
    def events(self) -> int:
        return sum(a.events for a in self.armed)

    @property
    def hit_rate_hz(self) -> float:
        return sum(a.rate_hz for a in self.armed)

    def __str__(self) -> str:
        cpu = "?" if self.cpu_fraction is None else f"{self.cpu_fraction * 100:.1f}%"
        reads = "?" if self.read_ms_per_s is None else f"{self.read_ms_per_s:.1f} ms/s"
        walks = "" if not self.rollup_ms_per_s else f" (smaps {self.rollup_ms_per_s:.1f})"
        text = f"hftmem's own cost: CPU {cpu} of a core · reads {reads}{walks}"
        if not self.armed:
            return text + " · no perf events on the engine"
        known = [a.engine_fraction for a in self.armed if a.engine_fraction is not None]
        cost = f", engine +{sum(known) * 100:.2f}% of a core" if known else ""
        what = ", ".join(a.what for a in self.armed)
        return text + f" · {self.events} perf events ({what}): {self.hit_rate_hz:,.1f} hits/s{cost}"


class ObserveCost:
    """Folds CPU readings and sample costs into rates over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._cpu: deque[tuple[float, float]] = deque()  # (monotonic, process cpu seconds)
        self._reads: deque[tuple[float, float, float]] = deque()  # (time, all ms, smaps ms)

    def add_cpu(self, now: float, cpu_s: float) -> None:
        self._cpu.append((now, cpu_s))
        self._trim(self._cpu, now)

    def add_sample(self, now: float, cost_ms: dict[str, float]) -> None:
        walks = cost_ms.get("rollup", 0.0) + cost_ms.get("smaps", 0.0)
        self._reads.append((now, sum(cost_ms.values()), walks))
        self._trim(self._reads, now)

    def _trim(self, q: deque, now: float) -> None:
        while len(q) > 2 and q[1][0] <= now - self.window_s:
            q.popleft()

    def cpu_fraction(self) -> float | None:
        if len(self._cpu) < 2:
            return None
        (t0, c0), (t1, c1) = self._cpu[0], self._cpu[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else None

    def read_ms_per_s(self) -> tuple[float | None, float | None]:
        """(all reads, page-table walks) in ms per second of wall time; the first sample opens the window."""
        if len(self._reads) < 2:
            return None, None
        span = self._reads[-1][0] - self._reads[0][0]
        if span <= 0:
            return None, None
        rest = list(self._reads)[1:]
        return sum(r[1] for r in rest) / span, sum(r[2] for r in rest) / span

    def line(self, armed: tuple[ArmedEvents, ...] = ()) -> CostLine:
        reads, walks = self.read_ms_per_s()
        return CostLine(self.cpu_fraction(), reads, walks, tuple(armed))
