"""Allocation alarm model: rates, hot-thread suggestion, alarms; no process involved."""

from __future__ import annotations

from hftmem_tui.model.allocalarm import build_report, cpu_fractions, suggest_hot, window


def test_window_subtracts_and_new_threads_count_from_zero():
    before = {1: {"malloc": 10, "free": 4}}
    after = {1: {"malloc": 15, "free": 4}, 2: {"malloc": 3}}
    assert window(before, after) == {1: {"malloc": 5, "free": 0}, 2: {"malloc": 3}}


def test_cpu_fractions_from_ticks():
    before = {1: ("strat", 100), 2: ("md", 50)}
    after = {1: ("strat", 300), 2: ("md", 52), 3: ("new", 7)}
    fr = cpu_fractions(before, after, 2.0, clk_tck=100)
    assert fr == {1: 1.0, 2: 0.01}  # thread 3 appeared mid-window: no fraction claimed


def test_suggest_hot_picks_busy_pollers_else_the_busiest():
    assert suggest_hot({1: 0.99, 2: 0.02, 3: 0.7}) == [1, 3]
    assert suggest_hot({1: 0.1, 2: 0.3}) == [2]
    assert suggest_hot({1: 0.0}) == []
    assert suggest_hot({}) == []


def test_alarm_only_for_hot_threads_that_called_the_allocator():
    calls = {1: {"malloc": 300, "free": 300}, 2: {"malloc": 50}, 3: {"malloc": 0, "free": 0}}
    names = {1: "strat", 2: "ctl", 3: "md"}
    rep = build_report(calls, names, 3.0, [1, 3], cpu={1: 1.0}, cost_per_call_s=2e-6)
    assert [t.tid for t in rep.threads] == [1, 2, 3]
    assert [a.tid for a in rep.alarms] == [1]
    assert rep.alarms[0].rate_hz == 200.0
    assert "ALARM: hot thread 1 (strat)" in str(rep.alarms[0]) and "malloc 300" in str(rep.alarms[0])
    assert rep.calls_per_s == 650 / 3.0
    assert abs(rep.cost_fraction - 650 / 3.0 * 2e-6) < 1e-12
    quiet = build_report({1: {"malloc": 0}}, names, 1.0, [1])
    assert quiet.alarms == () and quiet.cost_fraction is None

