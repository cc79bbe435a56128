"""Rolling histories the TUI draws, built from Samples. Pure: no I/O, no Textual.

One ``History`` per attach session: RSS, fault rates, CPU, perf counter rates, the engine's
per-second loop gaps, per-mapping growth since attach, and the leak verdict. Every series is a
fixed-capacity ring, so memory stays bounded however long the TUI runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass

from hftmem_tui.model.series import RateSeries, TimeSeries
from hftmem_tui.model.trend import LeakVerdict, fit_leak

if TYPE_CHECKING:  # types only: model imports no source at run time
    from hftmem_tui.sources.procfs import Mapping
    from hftmem_tui.feeds.sample import Sample

MappingKey = tuple[int, str]
GAP_WINDOWS = 64  # the engine keeps its last 64 one-second windows (EngineStats.*_gap_hist)


def mapping_key(m: Mapping) -> MappingKey:
    return (m.start, m.path)


@dataclass(frozen=True, slots=True)
class MappingGrowth:
    """RSS of one mapping relative to attach (baseline 0 for mappings born after attach)."""

    since_attach_kb: int
    since_last_kb: int  # change since the previous full smaps read
    new: bool  # appeared after attach


class History:
    """Everything the panes plot. ``add(sample)`` once per sample, in order.

    ``warmup_s``: seconds after the process start whose RSS says nothing about a leak (the demo
    engine's pools and arenas are static: its RSS settles within a second, so 5 s is ample).
    """

    def __init__(self, capacity: int = 3600, *, leak_every: int = 5, leak_max_points: int = 60,
                 warmup_s: float = 5.0, short_window_s: float = 60.0, long_window_s: float = 600.0) -> None:
        self.capacity = capacity
        self.rss = TimeSeries(capacity)  # bytes
        self.cpu = TimeSeries(capacity)  # percent of one core
        self.minflt = RateSeries(capacity)  # faults/s
        self.majflt = RateSeries(capacity)
        self.perf: dict[str, TimeSeries] = {}  # event -> per-second rate
        self.perf_unsupported: frozenset[str] = frozenset()
        self.gap_max = TimeSeries(capacity)  # (window index, ns)
        self.gap_p999 = TimeSeries(capacity)
        self.peak_rss_kb = 0
        self.first_time: float | None = None
        self.last: Sample | None = None
        self.mappings: tuple[Mapping, ...] = ()
        self.mappings_time: float | None = None
        self._baseline: dict[MappingKey, int] | None = None
        self._prev_rss: dict[MappingKey, int] = {}
        self.growth: dict[MappingKey, MappingGrowth] = {}
        self._last_window = -1
        self.leak: LeakVerdict = fit_leak(())
        self.leak_since: float | None = None  # sample time the verdict first turned "growing"
        self._leak_every = max(1, leak_every)
        self._leak_max_points = leak_max_points
        self.warmup_s = warmup_s
        self.short_window_s = short_window_s
        self.long_window_s = long_window_s
        self._warmup_left: float | None = None
        self._long: LeakVerdict = self.leak
        self.samples = 0

    def add(self, s: Sample) -> None:
        t = s.time
        if self.first_time is None:
            self.first_time = t
        self.samples += 1
        self.last = s
        rss_kb = s.status.vm_rss_kb
        self.rss.append(t, rss_kb * 1024)
        self.peak_rss_kb = max(self.peak_rss_kb, s.status.vm_hwm_kb, rss_kb)
        self.cpu.append(t, s.process.cpu_percent)
        epoch = s.process.create_time
        self.minflt.add(t, s.stat.minflt, epoch)
        self.majflt.add(t, s.stat.majflt, epoch)
        if s.perf is not None:
            self._add_perf(t, s)
        if s.engine is not None:
            self._add_gaps(s)
        if s.mappings is not None:
            self._add_mappings(s.mappings, t)
        self._fit_leak(s)

    def _fit_leak(self, s: Sample) -> None:
        """Two fits: the last minute (a leak that just started) and the last 10 min (a slow one).

        The warm-up (pools and arenas filling at start) counts from the process start, not from
        attach: an engine that has run for an hour has no warm-up left to ignore.
        """
        if self._warmup_left is None:
            age = s.time - s.process.create_time if s.process.create_time else self.warmup_s
            self._warmup_left = max(0.0, self.warmup_s - age)
        points = list(self.rss.window(self.long_window_s))
        short = fit_leak(points, window_s=self.short_window_s, warmup_s=self._warmup_left,
                         max_points=self._leak_max_points)
        if self.samples % self._leak_every == 1 or self._leak_every == 1:
            self._long = fit_leak(points, window_s=self.long_window_s, warmup_s=self._warmup_left,
                                  max_points=self._leak_max_points)
        long = self._long
        if long.verdict == "growing":
            self.leak = long
        elif short.verdict == "growing" or long.verdict == "insufficient data":
            self.leak = short
        else:
            self.leak = long
        if self.leak.verdict == "growing":
            if self.leak_since is None:
                self.leak_since = s.time
        else:
            self.leak_since = None

    def _add_perf(self, t: float, s: Sample) -> None:
        p = s.perf
        assert p is not None
        self.perf_unsupported = p.unsupported
        span = p.span_s or 1.0
        for event, value in p.values.items():
            series = self.perf.get(event)
            if series is None:
                series = self.perf[event] = TimeSeries(self.capacity)
            series.append(t, value / span)
        for event in p.not_counted:  # did not run this interval: a rate of 0, not a gap
            if event not in p.values and event not in p.unsupported:
                series = self.perf.setdefault(event, TimeSeries(self.capacity))
                series.append(t, 0.0)

    def _add_gaps(self, s: Sample) -> None:
        e = s.engine
        assert e is not None
        done = e.window_index  # windows 0..done-1 are complete
        first = max(self._last_window + 1, done - GAP_WINDOWS, 0)
        for w in range(first, done):
            if w == done - 1:
                mx, p999 = e.last_max_gap_ns, e.last_p999_gap_ns
            else:  # older windows we never saw: backfill from the engine's own 64-window ring
                mx, p999 = e.max_gap_hist[w % GAP_WINDOWS], e.p999_gap_hist[w % GAP_WINDOWS]
            self.gap_max.append(w, mx)
            self.gap_p999.append(w, p999)
        self._last_window = max(self._last_window, done - 1)

    def _add_mappings(self, mappings: tuple[Mapping, ...], t: float) -> None:
        current = {mapping_key(m): m.rss_kb for m in mappings}
        if self._baseline is None:
            self._baseline = dict(current)
        growth = {}
        for key, rss in current.items():
            base = self._baseline.get(key)
            growth[key] = MappingGrowth(rss - (base or 0), rss - self._prev_rss.get(key, rss), base is None)
        self.growth = growth
        self._prev_rss = current
        self.mappings = mappings
        self.mappings_time = t

    def growing(self, key: MappingKey) -> bool:
        """Grew at the last full read, or holds more than at attach."""
        g = self.growth.get(key)
        return g is not None and (g.since_last_kb > 0 or g.since_attach_kb > 0)
