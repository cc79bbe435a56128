"""Numbers for people: counts per second and nanoseconds scaled to a unit read at a glance."""

from __future__ import annotations

# (threshold, divisor, format) tried in order; the first threshold the value reaches wins.
RATE_STEPS = ((1e9, 1e9, "{:.1f}G"), (1e6, 1e6, "{:.1f}M"), (1e4, 1e3, "{:.0f}k"), (100, 1, "{:.0f}"), (0, 1, "{:.1f}"))
NS_STEPS = ((1e9, 1e9, "{:.2f} s"), (1e6, 1e6, "{:.1f} ms"), (1e3, 1e3, "{:.1f} us"), (0, 1, "{:.0f} ns"))


def scaled(value: float, steps) -> str:
    for threshold, divisor, fmt in steps:
        if value >= threshold:
            return fmt.format(value / divisor)
    return steps[-1][2].format(value)  # negative values: the smallest unit


def fmt_rate(v: float | None) -> str:
    """12.3M, 45k, 512, 0.5 (per second); "—" when unknown."""
    return "—" if v is None else scaled(v, RATE_STEPS)


def fmt_ns(ns: float) -> str:
    """1.20 s, 3.4 ms, 5.6 us, 78 ns."""
    return scaled(ns, NS_STEPS)
