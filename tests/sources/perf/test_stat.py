"""perf stat CSV parsing, on lines captured from `perf stat -I 200 -x,` on this machine."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from hftmem_tui.errors import AccessDenied, NoSuchProcess, ToolFailed
from hftmem_tui.sources.perf.stat import (
    DEFAULT_EVENTS,
    HARDWARE_EVENTS,
    PerfStream,
    error_from_stderr,
    parse_perf_csv_line,
)
from tests.conftest import FIXTURES

FIX = FIXTURES / "perf"


def test_counted_line():
    p = parse_perf_csv_line("     0.200274603,1239,,page-faults,18211701,100.00,68.033,K/sec")
    assert p.timestamp_s == 0.200274603 and p.event == "page-faults" and p.value == 1239.0
    assert p.supported and p.counted and p.running_pct == 100.0


def test_task_clock_has_unit():
    p = parse_perf_csv_line("     0.200274603,18.21,msec,task-clock,18211701,100.00,0.091,CPUs utilized")
    assert p.value == 18.21 and p.unit == "msec"


def test_not_supported_and_not_counted():
    ns = parse_perf_csv_line("     0.200274603,<not supported>,,cycles,0,100.00,,")
    assert ns.value is None and not ns.supported and not ns.counted
    nc = parse_perf_csv_line("     4.065955270,<not counted>,msec,task-clock,0,100.00,,")
    assert nc.value is None and nc.supported and not nc.counted


def test_one_shot_line_without_timestamp():
    p = parse_perf_csv_line("<not supported>,,cycles,0,100.00,,")
    assert p.timestamp_s is None and p.event == "cycles" and not p.supported


def test_noise_lines_ignored():
    assert parse_perf_csv_line("") is None
    assert parse_perf_csv_line("# started on Sat Nov 28") is None
    assert parse_perf_csv_line("Problems finding threads of monitor") is None


def test_every_captured_line_parses():
    for name in ("stat_I200_busy.csv", "stat_I200_target_exits.csv", "probe_pid1.csv"):
        for line in (FIX / name).read_text().splitlines():
            assert parse_perf_csv_line(line) is not None, line


def test_captured_busy_run_groups_into_samples():
    lines = [parse_perf_csv_line(ln) for ln in (FIX / "stat_I200_busy.csv").read_text().splitlines()]
    stamps = sorted({p.timestamp_s for p in lines})
    assert len(lines) == len(stamps) * len(DEFAULT_EVENTS)
    assert {p.event for p in lines if not p.supported} == set(HARDWARE_EVENTS)
    assert all(p.value and p.value > 0 for p in lines if p.event == "task-clock" and p.timestamp_s < 1.6)


def test_sample_building_maps_modifiers_back():
    stream = PerfStream.__new__(PerfStream)
    stream.events = ("cycles", "task-clock", "page-faults")
    lines = [parse_perf_csv_line(x) for x in (
        "1.0,<not supported>,,cycles:u,0,100.00,,",
        "1.0,<not counted>,msec,task-clock,0,100.00,,",
        "1.0,12,,page-faults,100,100.00,,")]
    s = stream._sample(lines)
    assert s.timestamp_s == 1.0 and s.unsupported == {"cycles"} and s.not_counted == {"task-clock"}
    assert s.values == {"cycles": None, "task-clock": None, "page-faults": 12.0}


def test_refusal_becomes_one_line_access_denied():
    err = error_from_stderr(42, (FIX / "refused_stderr.txt").read_text(), 255)
    assert isinstance(err, AccessDenied) and "\n" not in str(err)
    assert "Access to performance monitoring" in str(err) and "perf_event_paranoid=" in str(err)


def test_missing_pid_and_unknown_failure():
    assert isinstance(error_from_stderr(9, "Problems finding threads of monitor\n\n Usage: ...", 234), NoSuchProcess)
    err = error_from_stderr(9, "event syntax error: 'bogus'\n", 129)
    assert isinstance(err, ToolFailed) and str(err) == "perf stat failed: event syntax error: 'bogus'"


def test_stream_ends_when_the_target_dies_unreaped():
    """A killed, not yet reaped target is a zombie (its state read through procfs): the stream ends."""
    if shutil.which("perf") is None:
        pytest.skip("perf is not installed")
    child = subprocess.Popen(["sleep", "60"])
    try:
        with PerfStream(child.pid, interval_ms=100, events=("task-clock", "page-faults")) as stream:
            samples = stream.samples()
            next(samples)
            child.kill()  # no wait(): it stays a zombie until the end of the test
            t0 = time.monotonic()
            rest = list(samples)
            assert time.monotonic() - t0 < 5 and len(rest) < 40
    finally:
        child.kill()
        child.wait()
