"""When to repeat a costly read (smaps_rollup, full smaps): by count and by measured cost.

smaps and smaps_rollup walk the target's page tables under its mmap lock, and their cost grows
with the target's RSS (~100 ms per 4 GB, tens of seconds on TB heaps). A fixed rate is either
too slow on a small process or harmful on a big one, so a read is due only when both hold:
at least ``every`` samples since the last one, and the time since the last one is at least
``cost / budget`` (the read then takes at most ``budget`` of the target's wall time).
Pure: the caller passes the clock readings; no process, no I/O.
"""

from __future__ import annotations


class DutyCycle:
    """Schedule one costly read at most every ``every`` samples and within ``budget`` of wall time."""

    def __init__(self, every: int = 1, budget: float = 0.01) -> None:
        if every < 1:
            raise ValueError("every must be >= 1")
        if not 0 < budget <= 1:
            raise ValueError("budget must be in (0, 1]")
        self.every = every
        self.budget = budget
        self.last_start: float | None = None
        self.last_cost_s = 0.0
        self._since = 0  # samples since the last read
        self.runs = 0
        self.skipped = 0  # samples where the read was due by count but held back by its cost

    def due(self, now: float) -> bool:
        """Whether the read should run at this sample (call once per sample)."""
        if self.last_start is None:
            return True
        self._since += 1
        if self._since < self.every:
            return False
        if now - self.last_start < self.last_cost_s / self.budget:
            self.skipped += 1
            return False
        return True

    def ran(self, start: float, end: float) -> None:
        """Record a read that ran from ``start`` to ``end`` (same clock as ``due``)."""
        self.last_start = start
        self.last_cost_s = max(0.0, end - start)
        self._since = 0
        self.runs += 1

    @property
    def min_period_s(self) -> float:
        """The shortest spacing the last measured cost allows."""
        return self.last_cost_s / self.budget
