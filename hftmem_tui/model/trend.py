"""Leak-trend fit: is the target's RSS growing, and how sure are we?

Method (why): fit only the most recent ``window_s`` of samples, after dropping the first
``warmup_s`` of the series, because an engine pre-allocates its pools and arenas at start-up
and that step says nothing about a leak. On that window use the Theil-Sen estimator (median of
pairwise slopes): with a 29% breakdown point it ignores the remaining one-off steps (a pool
growing once, a burst of page faults) that would drag a least-squares line. To stay cheap on
thousands of points, the window is first reduced to at most ``max_points`` equal-count bins
(median t, median value per bin: itself robust, and it averages out page-granular noise), then
all pairs of bins are used: O(n log n) in the points, O(max_points^2) pairs at most.

Confidence (0..1) = sample-size factor (n/30, capped) times: for growing/shrinking, how far
the pairwise slopes agree on the sign (2*share-1: 0 = coin flip); for flat, the share of the
slope's 95% interval that lies inside +-min_slope (1 = slope pinned near zero). The verdict is "growing"/"shrinking" only when the Theil-Sen 95% interval excludes 0
and the slope exceeds ``min_slope_mib_per_min``, else "flat".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LeakVerdict:
    slope_mib_per_min: float
    confidence: float
    since_t: float | None
    verdict: str  # "growing" | "flat" | "shrinking" | "insufficient data"
    low_mib_per_min: float = 0.0   # 95% interval of the slope
    high_mib_per_min: float = 0.0
    points: int = 0


def _median(sorted_values: Sequence[float]) -> float:
    n = len(sorted_values)
    mid = n // 2
    return sorted_values[mid] if n % 2 else (sorted_values[mid - 1] + sorted_values[mid]) / 2


def _bins(points: list[tuple[float, float]], max_points: int) -> list[tuple[float, float]]:
    if len(points) <= max_points:
        return points
    out = []
    n = len(points)
    for b in range(max_points):
        chunk = points[b * n // max_points:(b + 1) * n // max_points]
        out.append((_median(sorted(p[0] for p in chunk)), _median(sorted(p[1] for p in chunk))))
    return out


def fit_leak(samples: Sequence[tuple[float, float]], *, window_s: float = 600.0,
             warmup_s: float = 30.0, min_points: int = 8, min_span_s: float = 20.0,
             min_slope_mib_per_min: float = 0.05, max_points: int = 120) -> LeakVerdict:
    """Fit (t seconds, rss bytes) samples. Never raises on short or odd input."""
    points = sorted((float(t), float(v)) for t, v in samples)
    if points:
        first, last = points[0][0], points[-1][0]
        cut = max(first + warmup_s, last - window_s)
        if last - first <= warmup_s:  # too young to drop a warm-up: keep everything
            cut = first
        points = [p for p in points if p[0] >= cut]
    n = len(points)
    if n < min_points or points[-1][0] - points[0][0] < min_span_s:
        return LeakVerdict(0.0, 0.0, points[0][0] if points else None, "insufficient data",
                           points=n)
    pts = _bins(points, max_points)
    slopes = []
    m = len(pts)
    for i in range(m):
        ti, vi = pts[i]
        for j in range(i + 1, m):
            dt = pts[j][0] - ti
            if dt > 0:
                slopes.append((pts[j][1] - vi) / dt)
    if not slopes:
        return LeakVerdict(0.0, 0.0, points[0][0], "insufficient data", points=n)
    slopes.sort()
    k = len(slopes)
    slope = _median(slopes)
    # Sen's rank interval: C = z * sqrt(m(m-1)(2m+5)/18) pairs either side of the median.
    c = 1.96 * math.sqrt(m * (m - 1) * (2 * m + 5) / 18)
    lo = slopes[max(0, int(math.floor((k - c) / 2)))]
    hi = slopes[min(k - 1, int(math.ceil((k + c) / 2)))]
    per_min = 60.0 / MIB
    slope_m, lo_m, hi_m = slope * per_min, lo * per_min, hi * per_min
    threshold = min_slope_mib_per_min / per_min
    if lo > 0 and slope_m >= min_slope_mib_per_min:
        verdict = "growing"
        agree = 2 * sum(1 for s in slopes if s > 0) / k - 1  # 0 = coin flip, 1 = every pair up
    elif hi < 0 and slope_m <= -min_slope_mib_per_min:
        verdict = "shrinking"
        agree = 2 * sum(1 for s in slopes if s < 0) / k - 1
    else:
        verdict = "flat"
        # Share of the 95% interval inside the "flat" band: 1 when the fit pins the slope near 0.
        inside = max(0.0, min(hi, threshold) - max(lo, -threshold))
        agree = inside / (hi - lo) if hi > lo else 1.0
    size_factor = min(1.0, n / 30.0)
    return LeakVerdict(slope_m, round(max(0.0, min(1.0, agree)) * size_factor, 4), points[0][0], verdict,
                       lo_m, hi_m, n)
