"""TourState: the chapter cursor, the bug switch and when a chapter counts as observed."""

from __future__ import annotations

import pytest

from hftmem_tui.demo import tour
from hftmem_tui.demo.chapters import CHAPTERS
from hftmem_tui.demo.tour import TourState
from tests.helpers import tour_sample


def test_start_and_clamped_moves():
    s = TourState(start="overflow")
    assert s.chapter.name == "overflow" and s.index == 2
    assert s.goto(-5).name == "leak" and s.goto(99).name == "pool-exhaustion"
    assert TourState(start="no-such").chapter.name == "leak"
    with pytest.raises(ValueError):
        TourState(())


def test_observed_once_with_the_sample_before_switch_on_as_baseline():
    s = TourState(start="double-free")
    assert not s.add(tour_sample(0.0, pool_double_frees=3))  # bug off: only remembered
    s.switch_on()
    assert s.baseline is not None and s.baseline.engine.pool_double_frees == 3
    assert not s.add(tour_sample(0.3, scenarios=["double-free"], pool_double_frees=3))
    assert s.engine_reports_on() is True and not s.observed_now
    assert s.add(tour_sample(0.6, scenarios=["double-free"], pool_double_frees=9))  # first time: True
    assert not s.add(tour_sample(0.9, scenarios=["double-free"], pool_double_frees=12))  # already observed
    assert s.observed["double-free"].startswith("pool_double_frees +6 in 0.6 s")
    s.switch_off()
    assert s.fixed and not s.bug_on
    s.goto(0)
    assert s.observation is None and not s.fixed and "double-free" in s.observed


def test_switch_on_before_any_sample_takes_the_first_as_baseline():
    s = TourState(start="overflow")
    s.switch_on()
    assert not s.add(tour_sample(0.0, corrupted_orders=10))
    assert s.baseline.engine.corrupted_orders == 10 and s.samples == []


def test_samples_are_bounded(monkeypatch):
    monkeypatch.setattr(tour, "MAX_SAMPLES", 5)
    s = TourState(CHAPTERS[:1])
    s.switch_on()
    for i in range(20):
        s.add(tour_sample(float(i), scenarios=["leak"]))
    assert len(s.samples) == 5 and s.samples[-1].t == 19.0 and s.baseline.t == 0.0
