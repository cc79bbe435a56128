"""The demo engine as a user drives it: `hftmem engine`, `hftmem scenario`, /proc as the judge."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from hftmem_tui.errors import EngineError
from hftmem_tui.sources.engine import SCENARIOS, EngineControl
from tests.conftest import ROOT, proc_status, run_cli, stop_process, vm_rss_kib
from tests.helpers import wait_engine_advances

MiB = 1024
WINDOW = "hftmem_engine_stats.window_index"  # +1 per second of the engine running (a latency window)


def test_detach_prints_only_a_pid_of_a_running_untraced_engine(engine):
    pid = engine()
    st = proc_status(pid)
    assert st["Name"].startswith("hftmem-engine")
    assert st["State"][0] in "RS"
    assert st["TracerPid"] == "0"
    assert EngineControl(pid).status().pid == pid


def test_rss_stays_flat_with_no_scenario(engine):
    pid = engine()
    wait_engine_advances(pid, WINDOW)  # warm-up (a first 1 s window): pools, arena and ring pages get touched
    before = vm_rss_kib(pid)
    wait_engine_advances(pid, WINDOW, by=5)  # 5 s of the engine running, however loaded the machine is
    growth = vm_rss_kib(pid) - before
    assert growth < 1 * MiB, f"RSS grew {growth} KiB in 5 s with no scenario"


def test_leak_grows_rss_and_switching_it_off_live_stops_growth(engine):
    pid = engine("--scenario", "leak")
    wait_engine_advances(pid, WINDOW)
    before = vm_rss_kib(pid)
    wait_engine_advances(pid, "hftmem_engine_stats.leaked_bytes", by=5 << 20, timeout=20)  # ~2.5 s at 2 MiB/s
    leaking = vm_rss_kib(pid) - before
    assert leaking > 4 * MiB, f"leak grew RSS only {leaking} KiB while it leaked 5 MiB"

    r = run_cli("scenario", str(pid), "--off", "leak")
    assert r.returncode == 0, r.stderr
    assert "scenarios=-" in r.stdout
    wait_engine_advances(pid, WINDOW)
    before = vm_rss_kib(pid)
    wait_engine_advances(pid, WINDOW, by=5)
    after_off = vm_rss_kib(pid) - before
    assert after_off < 1 * MiB, f"RSS still grew {after_off} KiB after leak was switched off"


def test_engine_paced_uses_about_one_core(engine):
    pid = engine()
    p = psutil.Process(pid)
    p.cpu_percent(None)
    time.sleep(2.0)  # CPU% is CPU time over wall time: the window is wall time by definition
    cpu = p.cpu_percent(None)
    assert 30.0 < cpu < 140.0, f"paced engine used {cpu:.0f}% CPU"


def test_every_scenario_switches_on_and_off_live(engine):
    pid = engine()
    for name in SCENARIOS:
        r = run_cli("scenario", str(pid), "--on", name)
        assert r.returncode == 0, r.stderr
        assert name in r.stdout.split("scenarios=")[1].split()[0].split(",")
    wait_engine_advances(pid, WINDOW, by=2)  # all eight at once for 2 s: the engine must survive the combination
    assert EngineControl(pid).status().scenarios == frozenset(SCENARIOS)
    for name in SCENARIOS:
        r = run_cli("scenario", str(pid), "--off", name)
        assert r.returncode == 0, r.stderr
    st = EngineControl(pid).status()
    assert st.scenarios == frozenset()
    assert proc_status(pid)["State"][0] in "RS"


def test_list_scenarios_names_all_eight(engine_binary):
    r = run_cli("engine", "--list-scenarios")
    assert r.returncode == 0, r.stderr
    listed = [line.split()[0] for line in r.stdout.splitlines() if line.strip()]
    assert listed == list(SCENARIOS)


# ----------------------------------------------------------------------------- bad input


def _one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_unknown_scenario_is_one_line_and_nonzero(engine_binary):
    line = _one_line_error(run_cli("engine", "--detach", "--scenario", "segfault"))
    assert "unknown scenario 'segfault'" in line


def test_unknown_scenario_sent_to_running_engine_leaves_it_unharmed(engine):
    pid = engine()
    line = _one_line_error(run_cli("scenario", str(pid), "--on", "nope"))
    assert "unknown scenario" in line
    # The engine itself also refuses garbage on its socket without harm.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(f"\0hftmem-engine-{pid}")
        s.sendall(b"on nope\n\xff\xfe garbage\n" + b"x" * 10000 + b"\n")
        reply = s.recv(4096).decode(errors="replace")
    assert reply.startswith("error")
    assert EngineControl(pid).status().pid == pid


def test_control_command_to_a_non_engine_pid(engine_binary):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        line = _one_line_error(run_cli("scenario", str(sleeper.pid), "--on", "leak"))
        assert "not a hftmem demo engine" in line
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_control_command_to_unknown_pid(engine_binary):
    line = _one_line_error(run_cli("scenario", "999999999", "--on", "leak"))
    assert "no process with pid 999999999" in line


def test_second_engine_on_the_same_control_path_is_refused(engine):
    name = f"hftmem-test-{os.getpid()}"
    first = engine("--control", name)
    line = _one_line_error(run_cli("engine", "--detach", "--control", name))
    assert "already in use" in line
    assert EngineControl(first, name=name).status().pid == first
    assert proc_status(first)["State"][0] in "RS"


def test_foreground_engine_prints_pid_and_stops_on_ctrl_c(engine_binary, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "hftmem_tui.cli", "engine"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        first = proc.stdout.readline()
        assert f"pid={proc.pid}" in first  # the command became the engine: same pid
        wait_engine_advances(proc.pid)  # running its loop (its handlers are in place before it prints)
        proc.send_signal(2)
        assert proc.wait(timeout=10) == 0
    finally:
        stop_process(proc.pid)


def test_a_busy_engine_is_retried_then_said_in_one_line():
    # A stand-in listener that is always full: the client retries for its timeout, then says why.
    name = f"hftmem-busy-{os.getpid()}"
    served = []
    stop = threading.Event()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind("\0" + name)
        srv.listen(64)
        srv.settimeout(0.05)

        def serve() -> None:
            while not stop.is_set():
                try:
                    c, _ = srv.accept()
                except TimeoutError:
                    continue
                served.append(1)
                with c:
                    c.sendall(b"ERR busy: 8 clients connected\n")

        server = threading.Thread(target=serve)
        server.start()
        try:
            started = time.monotonic()
            with pytest.raises(EngineError) as err:
                EngineControl(os.getpid(), name=name, timeout=0.5).set_scenario("leak", True)
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            server.join(timeout=5)
    assert str(err.value) == f"engine {os.getpid()} is busy: 8 clients connected"
    assert len(served) > 1, "busy is transient: the client tries again within its timeout"
    assert elapsed < 2.0
