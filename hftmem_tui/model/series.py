"""Fixed-capacity time series for the live graphs (RSS history, fault rates, perf counters)."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable


class TimeSeries:
    """A ring of (t, value) points, oldest dropped first. t is seconds (monotonic or epoch)."""

    def __init__(self, capacity: int = 3600) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._points: deque[tuple[float, float]] = deque(maxlen=capacity)

    def append(self, t: float, value: float) -> None:
        """Add a point; a t older than the last one is refused (the graphs assume order)."""
        if self._points and t < self._points[-1][0]:
            raise ValueError(f"time went backwards: {t} < {self._points[-1][0]}")
        self._points.append((t, value))

    def __len__(self) -> int:
        return len(self._points)

    def __iter__(self):
        return iter(self._points)

    def last(self) -> tuple[float, float] | None:
        return self._points[-1] if self._points else None

    def window(self, seconds: float) -> list[tuple[float, float]]:
        """Points with t >= last t - seconds (the last `seconds` of history)."""
        if not self._points:
            return []
        since = self._points[-1][0] - seconds
        out = []
        for point in reversed(self._points):  # newest first: stop at the window's edge
            if point[0] < since:
                break
            out.append(point)
        out.reverse()
        return out

    def times(self) -> list[float]:
        return [t for t, _ in self._points]

    def values(self) -> list[float]:
        return [v for _, v in self._points]

    def clear(self) -> None:
        self._points.clear()


class RateSeries(TimeSeries):
    """Per-second rates of a cumulative counter (page faults, context switches, ticks).

    A counter that goes down (reset) or an epoch change (e.g. the process create_time: a
    restarted target under the same pid) starts a new baseline instead of a bogus rate.
    """

    def __init__(self, capacity: int = 3600) -> None:
        super().__init__(capacity)
        self._prev: tuple[float, float] | None = None
        self._epoch: Hashable = None
        self.resets = 0

    def add(self, t: float, counter: float, epoch: Hashable = None) -> float | None:
        """Feed one counter reading; returns the rate appended, or None for a new baseline."""
        prev = self._prev
        if epoch != self._epoch:
            if self._prev is not None:
                self.resets += 1
            self._epoch = epoch
            prev = None
        self._prev = (t, counter)
        if prev is None:
            return None
        dt = t - prev[0]
        if dt <= 0:
            self._prev = prev  # duplicate or out-of-order reading: keep the older baseline
            return None
        if counter < prev[1]:
            self.resets += 1
            return None
        rate = (counter - prev[1]) / dt
        self.append(t, rate)
        return rate

    def clear(self) -> None:
        super().clear()
        self._prev = None
