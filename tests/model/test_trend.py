from __future__ import annotations

import random

from hftmem_tui.model.trend import fit_leak

MIB = 1 << 20


def series(seconds, fn, step=1.0, noise=0.0, seed=7):
    r = random.Random(seed)
    return [(t * step, fn(t * step) + r.gauss(0, noise)) for t in range(int(seconds / step))]


def test_steady_leak_is_growing_with_right_slope():
    v = fit_leak(series(600, lambda t: 200 * MIB + t / 60 * 2 * MIB, noise=256 * 1024))
    assert v.verdict == "growing" and abs(v.slope_mib_per_min - 2.0) < 0.1
    assert v.confidence > 0.8 and v.low_mib_per_min < 2.0 < v.high_mib_per_min


def test_warmup_step_then_flat_is_flat():
    # Pools pre-allocated 50 MiB at start-up, then nothing: a least-squares fit would call it a leak.
    v = fit_leak(series(600, lambda t: 100 * MIB + (0 if t < 20 else 50 * MIB), noise=128 * 1024))
    assert v.verdict == "flat" and v.confidence > 0.8 and v.since_t == 30.0


def test_one_off_step_inside_window_does_not_make_a_leak():
    v = fit_leak(series(600, lambda t: 100 * MIB + (0 if t < 300 else 4 * MIB)))
    assert v.verdict != "growing" or v.slope_mib_per_min < 0.5


def test_shrinking():
    v = fit_leak(series(300, lambda t: 500 * MIB - t * 64 * 1024, step=2.0))
    assert v.verdict == "shrinking" and abs(v.slope_mib_per_min + 3.75) < 0.01


def test_insufficient_data():
    assert fit_leak([]).verdict == "insufficient data"
    assert fit_leak([(0, 1), (1, 2), (2, 3)]).verdict == "insufficient data"
    v = fit_leak(series(10, lambda t: t * MIB, step=0.5))  # 20 points but only 10 s
    assert v.verdict == "insufficient data" and v.confidence == 0.0


def test_noise_only_is_flat_or_low_confidence():
    v = fit_leak(series(600, lambda t: 300 * MIB, noise=4 * MIB))
    assert v.verdict == "flat"


def test_uses_only_the_recent_window():
    # Leaked for 20 min, then fixed (flat) for the last 10 min: the verdict is about now.
    v = fit_leak(series(1800, lambda t: 100 * MIB + min(t, 1200) / 60 * MIB, step=2.0))
    assert v.verdict == "flat" and v.since_t >= 1190


def test_large_input_is_fast_and_deterministic():
    import time
    pts = series(20000, lambda t: t * 1024, noise=50_000, step=0.1)
    t0 = time.perf_counter()
    a = fit_leak(pts, window_s=1e9)
    assert time.perf_counter() - t0 < 1.0
    assert a == fit_leak(pts, window_s=1e9) and a.verdict == "growing"
