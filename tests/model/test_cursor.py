"""The replay time cursor: stepping, jumping, clock times, playback pacing. Pure, no process."""

from __future__ import annotations

from datetime import datetime

import pytest

from hftmem_tui.model.cursor import TimeCursor, parse_when

T0 = datetime(2026, 11, 28, 23, 59, 0).timestamp()  # crosses midnight after 60 s
TIMES = [T0 + i for i in range(0, 180, 2)]  # 90 samples, 2 s apart, 23:59:00 .. 00:01:58


def cursor(**kw) -> TimeCursor:
    return TimeCursor(TIMES, **kw)


def test_empty_recording_has_no_cursor():
    with pytest.raises(ValueError):
        TimeCursor([])


def test_step_clamps_to_the_recording():
    c = cursor()
    assert c.step(-1) == 0
    assert c.step(5) == 5 and c.time == TIMES[5]
    assert c.step(1000) == len(TIMES) - 1 and c.at_end


def test_jump_moves_by_recorded_time_and_at_least_one_sample():
    c = cursor()
    assert c.jump(60) == 30  # 60 s at 2 s a sample
    assert c.jump(-10) == 25
    assert c.jump(0.5) == 26  # less than one interval still moves one sample
    assert c.jump(-0.5) == 25
    assert c.jump(-1e9) == 0


def test_seek_time_takes_the_last_sample_at_or_before():
    c = cursor()
    assert c.seek_time(T0 + 3) == 1
    assert c.seek_time(T0 - 100) == 0
    assert c.seek_time(T0 + 1e6) == len(TIMES) - 1
    assert c.seek_fraction(0.5) == 44 and c.seek_fraction(2) == len(TIMES) - 1


def test_speed_steps_and_pacing():
    c = cursor()
    assert c.delay_to_next() == pytest.approx(2.0)
    assert c.faster() == 2.0 and c.delay_to_next() == pytest.approx(1.0)
    c.speed = 64.0
    assert c.faster() == 64.0  # the fastest stays
    assert c.slower() == 32.0
    c.seek_index(len(TIMES) - 1)
    assert c.delay_to_next() is None


@pytest.mark.parametrize("text,index", [
    ("start", 0), ("end", 89), ("@60", 30), ("+10", 15), ("-4", 8),
    ("23:59:30", 15), ("00:01", 60), ("0:01:01", 60),
])
def test_parse_when(text, index):
    c = cursor()
    c.seek_index(10)
    assert parse_when(text, c) == index
    assert c.index == 10  # parsing does not move the cursor


@pytest.mark.parametrize("text", ["", "soon", "+abc", "25:00", "12:00", "@x", "1:2:3:4"])
def test_parse_when_refuses_with_a_reason(text):
    with pytest.raises(ValueError) as e:
        parse_when(text, cursor())
    assert str(e.value)
