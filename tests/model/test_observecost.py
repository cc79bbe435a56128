"""The inspector's cost line from plain numbers: CPU fraction, /proc ms per second, armed perf events."""

from __future__ import annotations

import pytest

from hftmem_tui.model.observecost import ArmedEvents, ObserveCost


def test_cpu_and_read_rates_over_the_window():
    c = ObserveCost(window_s=10.0)
    assert c.line().cpu_fraction is None and c.line().read_ms_per_s is None  # nothing measured yet
    c.add_cpu(100.0, 5.0)
    c.add_cpu(102.0, 5.1)  # 0.1 s of CPU in 2 s
    for i in range(5):
        c.add_sample(100.0 + i, {"status": 1.0, "rollup": 2.0} if i % 2 else {"status": 1.0})
    line = c.line()
    assert line.cpu_fraction == pytest.approx(0.05)
    # the first sample opens the window: samples 1..4 (1+2, 1, 1+2, 1 ms) over 4 s
    assert line.read_ms_per_s == pytest.approx(8.0 / 4)
    assert line.rollup_ms_per_s == pytest.approx(4.0 / 4)
    assert "CPU 5.0% of a core" in str(line) and "no perf events" in str(line)


def test_old_readings_leave_the_window():
    c = ObserveCost(window_s=5.0)
    c.add_cpu(0.0, 0.0)
    c.add_cpu(1.0, 1.0)  # a busy start...
    c.add_cpu(20.0, 1.0)
    c.add_cpu(30.0, 1.5)  # ...then 5% of a core
    assert c.cpu_fraction() == pytest.approx(0.05)


def test_armed_events_add_up():
    c = ObserveCost()
    line = c.line((ArmedEvents("perf watch", 8, 1000.0, 0.011), ArmedEvents("uprobes", 36, 50.0, None)))
    assert line.events == 44 and line.hit_rate_hz == pytest.approx(1050.0)
    text = str(line)
    assert "44 perf events (perf watch, uprobes): 1,050.0 hits/s, engine +1.10% of a core" in text
