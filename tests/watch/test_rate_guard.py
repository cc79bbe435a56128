"""HitRateGuard, the one hit-rate guard of every watch backend: fed hit by hit or by a running count."""

from __future__ import annotations

import pytest

from hftmem_tui.sources.watchpoint import HitRateGuard


def test_hits_trip_once_above_the_limit_in_the_window():
    g = HitRateGuard(5)
    assert not any(g.hit(10.0 + i * 0.1) for i in range(5))  # 5 hits in half a second: at the limit, not above
    assert g.in_window() == 5
    assert g.hit(10.5)  # the 6th within one second trips it
    assert g.tripped
    assert not g.hit(10.6)  # only once: the caller disarms on the first True


def test_hits_spread_out_never_trip():
    g = HitRateGuard(5)
    assert not any(g.hit(i * 0.25) for i in range(100))  # 4 hits/s for 25 s
    assert g.in_window() <= 5 and g.rate == pytest.approx(g.in_window())


@pytest.mark.parametrize("limit", [0, None])
def test_no_limit_never_trips(limit):
    g = HitRateGuard(limit)
    assert not any(g.hit(1.0 + i * 1e-4) for i in range(1000))
    assert not g.observe(2.0, 1e9)
    assert not g.tripped


def test_count_rate_since_start_then_over_the_last_second():
    g = HitRateGuard(1000, started=100.0)
    assert g.measure(100.5, 250) == pytest.approx(500)  # first second: since arming
    assert g.measure(101.0, 500) == pytest.approx(500)
    assert g.measure(102.0, 500) == pytest.approx(0)  # then the last second only: the field went quiet
    assert g.measure(103.0, 3500) == pytest.approx(3000)  # and a field that turns hot later is seen


def test_count_trips_when_the_rate_goes_above_the_limit_not_in_the_first_ms():
    g = HitRateGuard(1000, started=100.0)
    assert not g.observe(100.01, 500)  # 50,000 hits/s over 10 ms: too soon to judge
    assert not g.observe(100.5, 400)  # 800 hits/s
    assert g.observe(100.6, 700)  # 1,167 hits/s: above
    assert g.tripped and g.rate > 1000
    assert not g.observe(100.7, 10_000)  # once


def test_restart_counts_from_the_new_start():
    g = HitRateGuard(10, started=0.0)
    g.measure(0.5, 3)
    g.restart(50.0)
    assert g.measure(50.5, 4) == pytest.approx(8)
    assert g.in_window() == 0
