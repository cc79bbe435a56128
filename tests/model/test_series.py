from __future__ import annotations

import pytest

from hftmem_tui.model.series import RateSeries, TimeSeries


def test_ring_drops_oldest():
    s = TimeSeries(capacity=3)
    for t in range(5):
        s.append(t, t * 10)
    assert list(s) == [(2, 20), (3, 30), (4, 40)] and len(s) == 3
    assert s.last() == (4, 40) and s.times() == [2, 3, 4] and s.values() == [20, 30, 40]


def test_window_is_relative_to_last_point():
    s = TimeSeries(100)
    for t in range(0, 20, 2):
        s.append(t, t)
    assert s.window(4) == [(14, 14), (16, 16), (18, 18)]
    assert s.window(1000) == list(s)
    assert TimeSeries().window(5) == [] and TimeSeries().last() is None


def test_time_must_not_go_backwards():
    s = TimeSeries(4)
    s.append(2.0, 1)
    with pytest.raises(ValueError):
        s.append(1.0, 1)
    with pytest.raises(ValueError):
        TimeSeries(0)


def test_rate_from_cumulative_counter():
    r = RateSeries(10)
    assert r.add(0.0, 100) is None          # first reading: baseline only
    assert r.add(2.0, 300) == 100.0
    assert r.add(3.0, 300) == 0.0
    assert list(r) == [(2.0, 100.0), (3.0, 0.0)]


def test_rate_counter_reset_starts_new_baseline():
    r = RateSeries(10)
    r.add(0, 1000)
    r.add(1, 1100)
    assert r.add(2, 5) is None and r.resets == 1
    assert r.add(3, 15) == 10.0


def test_rate_process_restart_via_epoch():
    r = RateSeries(10)
    r.add(0, 10, epoch=111.0)
    r.add(1, 20, epoch=111.0)
    # Restarted under the same pid: the counter is higher, but it is a different process.
    assert r.add(2, 5000, epoch=222.0) is None and r.resets == 1
    assert r.add(3, 5010, epoch=222.0) == 10.0


def test_rate_ignores_duplicate_timestamps():
    r = RateSeries(10)
    r.add(1.0, 10)
    assert r.add(1.0, 20) is None
    assert r.add(2.0, 30) == 20.0
