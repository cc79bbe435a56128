"""Allocation alarms through uprobes against the real engine; probes are always removed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hftmem_tui.sources.perf.uprobes import list_session_probes
from tests.conftest import ROOT, run_cli
from tests.helpers import uprobes_mark, wait_for

pytestmark = uprobes_mark()


def perf_probe_list() -> str:
    return subprocess.run(["perf", "probe", "-l"], capture_output=True, text=True, timeout=30).stdout


def allocs(*args: str, timeout: float = 60.0) -> tuple[subprocess.CompletedProcess, str]:
    """`hftmem allocs ...` as run_cli runs it, and the probe group its session used (hftmem_<its pid>):
    other sessions on this machine may hold probes of their own meanwhile."""
    proc = subprocess.Popen([sys.executable, "-m", "hftmem_tui.cli", "allocs", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), f"hftmem_{proc.pid}"


@pytest.mark.slow
def test_hot_alloc_raises_the_alarm_with_per_thread_rates(engine):
    """The "done when": `hftmem allocs PID --duration 3` reports hot-alloc's allocations per thread."""
    pid = engine("--scenario", "hot-alloc")
    r, group = allocs(str(pid), "--duration", "3", "--warmup", "0.5", "--hot", "auto")
    assert r.returncode == 0, r.stderr
    rows = {ln.split()[1]: ln.split() for ln in r.stdout.splitlines() if ln.strip()[:1].isdigit()}
    assert set(rows) >= {"hftmem-strat", "hftmem-md", "hftmem-ctl"}, r.stdout
    header = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("TID")).split()
    strat = rows["hftmem-strat"]
    for fn in ("malloc/s", "new/s"):
        assert int(strat[header.index(fn)].replace(",", "")) > 1000, r.stdout  # one per message at least
    assert strat[-1] == "*"  # auto picked the busy-polling strategy thread
    assert int(rows["hftmem-md"][header.index("malloc/s")].replace(",", "")) == 0
    alarm = [ln for ln in r.stdout.splitlines() if ln.startswith("ALARM: hot thread")]
    assert len(alarm) == 1 and "hftmem-strat" in alarm[0]
    assert "first offenders" in r.stdout and "engine.cpp:" in r.stdout  # a call chain into the engine's source
    assert "probe cost:" in r.stdout and "us per call" in r.stdout
    assert not list_session_probes(group=group)  # the session removed its probes on the way out


def test_healthy_engine_raises_no_alarm(engine):
    pid = engine()
    r = run_cli("allocs", str(pid), "--duration", "1.5", "--warmup", "0.5", "--hot", "auto", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    names = {t["tid"]: t["name"] for t in data["threads"]}
    assert [names[t] for t in data["hot"]] == ["hftmem-strat"]
    assert data["alarms"] == []
    strat = next(t for t in data["threads"] if t["name"] == "hftmem-strat")
    assert sum(strat["calls"].values()) == 0
    assert {p["function"] for p in data["probes"]} >= {"malloc", "free", "calloc", "realloc", "new", "delete"}


def test_sigkill_leaves_no_probe(engine):
    """SIGKILL of `hftmem allocs`: its guardian removes the session's probes; the engine is never stopped."""
    pid = engine()
    proc = subprocess.Popen([sys.executable, "-m", "hftmem_tui.cli", "allocs", str(pid), "--duration", "60"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    group = f"hftmem_{proc.pid}"
    try:
        wait_for(lambda: len(list_session_probes(group=group)) >= 6, 20,
                 lambda: f"6 probes of {group}; stderr: {proc.stderr.read1().decode()}")
        assert group in perf_probe_list()
        proc.kill()
        proc.wait(5)
        wait_for(lambda: not list_session_probes(group=group), 5,
                 lambda: f"no probes of {group}; left: {list_session_probes(group=group)}")
        assert group not in perf_probe_list()
        assert "TracerPid:\t0" in Path(f"/proc/{pid}/status").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_removes_probes_on_the_way_out(engine):
    pid = engine()
    proc = subprocess.Popen([sys.executable, "-m", "hftmem_tui.cli", "allocs", str(pid), "--duration", "60"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    group = f"hftmem_{proc.pid}"
    try:
        wait_for(lambda: len(list_session_probes(group=group)) >= 6, 20, f"6 probes of {group}")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 128 + signal.SIGTERM
        assert not list_session_probes(group=group)
        assert b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_input_is_one_line(engine):
    pid = engine()
    r = run_cli("allocs", "99999999", "--duration", "1")
    assert r.returncode == 1 and r.stderr.startswith("hftmem: no process with pid 99999999")
    r = run_cli("allocs", str(pid), "--hot", "abc")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    r, group = allocs(str(pid), "--hot", "1", "--duration", "0.2", "--warmup", "0.2")
    assert r.returncode == 1 and "not a thread of process" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not list_session_probes(group=group)
