"""Faults on the inspector's side: perf killed under it; the inspector itself killed with SIGKILL,
SIGTERM or SIGHUP while observing. The engine must stay running and untraced, never stopped."""

from __future__ import annotations

import itertools
import os
import signal

import pytest

from hftmem_tui.feeds.recording import Recording
from tests.disturbance import EngineStopMonitor
from tests.faults.conftest import (
    assert_running_untraced,
    finish,
    kill_quietly,
    one_line,
    perf_child,
)
from tests.helpers import (
    free_port,
    gone,
    metric_value,
    scrape_metrics,
    spawn_cli,
    wait_for,
    wait_lines,
)

pytestmark = pytest.mark.fault
_numbers = itertools.count()


def _start(cmd: str, pid: int, tmp_path, *extra: str):
    """record or export on ``pid``, returned once it has sampled; (process, recording path or port)."""
    if cmd == "record":
        out = tmp_path / f"{cmd}-{next(_numbers)}.jsonl"
        proc = spawn_cli("record", str(pid), "--out", str(out), "--interval", "0.2", *extra)
        return proc, out
    port = free_port()
    proc = spawn_cli("export", str(pid), "--listen", f"127.0.0.1:{port}", "--interval", "0.2", *extra)
    return proc, port


def _ready(cmd: str, where) -> None:
    if cmd == "record":
        wait_lines(where, 3)
    else:
        assert metric_value(scrape_metrics(where), "hftmem_target_up") == 1


@pytest.mark.slow
def test_perf_killed_under_record_and_export(engine, tmp_path):
    """perf dies: one line saying so, sampling goes on without counters, the engine never notices."""
    pid = engine()
    started = [(cmd, *_start(cmd, pid, tmp_path)) for cmd in ("record", "export")]
    try:
        with EngineStopMonitor(pid) as mon:
            for cmd, proc, where in started:
                _ready(cmd, where)
                if cmd == "record":  # perf has counted at least one interval
                    wait_for(lambda: b'"perf":{' in where.read_bytes(), 10, "a sample with perf counters")
                perf = perf_child(proc.pid)
                os.kill(perf, signal.SIGKILL)
                wait_for(lambda: gone(perf), 5, "perf to die")
            rec_out = started[0][2]
            n = rec_out.read_bytes().count(b"\n")
            wait_lines(rec_out, n + 5)  # still sampling after perf died
            for cmd, proc, where in started:
                assert proc.poll() is None, f"{cmd} stopped when perf died"
                proc.send_signal(signal.SIGTERM)
                _, err = finish(proc)
                assert proc.returncode == 0
                one_line(err, "perf", "was killed by SIGKILL")
    finally:
        for _, proc, _ in started:
            kill_quietly(proc)
    assert not mon.disturbed, str(mon)
    assert_running_untraced(pid)
    samples = list(Recording.open(str(rec_out)).samples())
    assert any(s.perf for s in samples[:5]) and not any(s.perf for s in samples[-3:])
    assert any("was killed by SIGKILL" in n for s in samples for n in s.notes)


SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGHUP)


@pytest.mark.slow
def test_inspector_killed_while_observing(engine, tmp_path):
    """record and export, each killed by SIGKILL, SIGTERM and SIGHUP while sampling (with perf):
    SIGTERM/SIGHUP end cleanly (exit 0, recording closed with the reason), SIGKILL leaves no perf
    behind; the engine is never stopped or traced and keeps running."""
    pid = engine()
    runs = [(cmd, sig, *_start(cmd, pid, tmp_path)) for cmd in ("record", "export") for sig in SIGNALS]
    try:
        with EngineStopMonitor(pid) as mon:
            perfs = {}
            for cmd, sig, proc, where in runs:
                _ready(cmd, where)
                perfs[proc.pid] = perf_child(proc.pid)
            for cmd, sig, proc, where in runs:
                proc.send_signal(sig)
            for cmd, sig, proc, where in runs:
                _, err = finish(proc)
                assert "Traceback" not in err, (cmd, sig, err)
                if sig == signal.SIGKILL:
                    assert proc.returncode == -signal.SIGKILL
                else:
                    assert proc.returncode == 0, (cmd, sig, err)
                    assert err.strip() == "", (cmd, sig, err)
                if cmd == "record":
                    r = Recording.open(str(where))
                    n = len(list(r.samples()))
                    assert n >= 2
                    if sig != signal.SIGKILL:
                        assert r.complete and r.end["reason"] == f"stopped by {sig.name}", r.end
            wait_for(lambda: all(gone(p) for p in perfs.values()), 5, "every perf to exit with its inspector")
    finally:
        for _, _, proc, _ in runs:
            kill_quietly(proc)
    assert not mon.disturbed, str(mon)
    assert_running_untraced(pid)
