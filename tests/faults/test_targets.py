"""Faults on the target's side: killed, exiting, exec'ing, a zombie, stripped, Python, 100,000 mappings.

Each test asserts what the inspector says (one clear line, or a note) and the target's state
from /proc afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hftmem_tui.feeds.recording import Recording
from tests.conftest import ROOT, proc_status, run_cli, stop_process
from tests.faults.conftest import (
    assert_running_untraced,
    finish,
    kill_quietly,
    one_line,
)
from tests.helpers import (
    children,
    free_port,
    gone,
    metric_value,
    scrape_metrics,
    spawn_cli,
    wait_for,
    wait_lines,
)

pytestmark = pytest.mark.fault

HEADLESS_ON_A_PID = ("snapshot", "dump", "audit", "record", "export")


def _headless(cmd: str, pid: int, tmp_path: Path) -> tuple[str, ...]:
    return {
        "snapshot": ("snapshot", str(pid), "--no-perf"),
        "dump": ("dump", str(pid), "hftmem_engine_stats"),
        "audit": ("audit", str(pid), "--window", "0"),
        "record": ("record", str(pid), "--out", str(tmp_path / f"r{pid}.jsonl"), "--duration", "1"),
        "export": ("export", str(pid), "--listen", f"127.0.0.1:{free_port()}"),
        "allocs": ("allocs", str(pid), "--duration", "0.5", "--warmup", "0.1"),
    }[cmd]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["killed-9", "exits-normally"])
def test_target_dies_under_record_and_export(engine, tmp_path, sig):
    """record ends with one line and a complete file; export keeps serving target_up 0; later commands say 'no process'."""
    pid = engine()
    out = tmp_path / "r.jsonl"
    port = free_port()
    rec = spawn_cli("record", str(pid), "--out", str(out), "--interval", "0.2")
    exp = spawn_cli("export", str(pid), "--listen", f"127.0.0.1:{port}", "--interval", "0.25", "--no-perf")
    try:
        wait_lines(out, 3)
        assert metric_value(scrape_metrics(port), "hftmem_target_up") == 1
        perf = [c for c in children(rec.pid)]
        assert perf, "record runs perf stat"
        assert_running_untraced(pid)
        os.kill(pid, sig)
        _, err = finish(rec)
        assert rec.returncode == 0
        one_line(err, f"target {pid} exited", str(out))
        wait_for(lambda: metric_value(scrape_metrics(port), "hftmem_target_up") == 0, 10, "target_up 0")
        exp.send_signal(signal.SIGTERM)
        _, err = finish(exp)
        assert exp.returncode == 0
        one_line(err, f"target {pid} exited: serving hftmem_target_up 0")
    finally:
        kill_quietly(rec)
        kill_quietly(exp)
    r = Recording.open(str(out))
    n = len(list(r.samples()))
    assert r.complete and r.end["reason"] == "target exited" and r.end["samples"] == n >= 2
    wait_for(lambda: all(gone(c) for c in perf), 5, "perf to exit with its target")
    assert gone(pid)
    for cmd in ("snapshot", "dump", "audit"):
        r = run_cli(*_headless(cmd, pid, tmp_path))
        assert r.returncode == 1
        line = one_line(r.stderr, str(pid))  # reaped ("no process") or not yet (a zombie): both say so
        assert f"no process with pid {pid}" in line or f"process {pid} is a zombie" in line, line


def test_target_execs_another_program(engine_binary, tmp_path):
    """A target that execs: record says so in one line, drops what belonged to the old image and
    reads what belongs to the new one (sh -> sleep; sh -> the engine, whose stats appear)."""
    to_sleep = subprocess.Popen(["sh", "-c", "read go; exec sleep 30"], stdin=subprocess.PIPE)
    to_engine = subprocess.Popen(["sh", "-c", f"read go; exec {engine_binary}"], stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    recs = {}
    try:
        for p in (to_sleep, to_engine):
            out = tmp_path / f"{p.pid}.jsonl"
            recs[p.pid] = (spawn_cli("record", str(p.pid), "--out", str(out), "--interval", "0.1",
                                     "--no-perf"), out)
        for p in (to_sleep, to_engine):
            wait_lines(recs[p.pid][1], 3)
            p.stdin.write(b"go\n")
            p.stdin.close()
        wait_for(lambda: proc_status(to_engine.pid)["Name"] == "hftmem-engine"
                 and proc_status(to_sleep.pid)["Name"] == "sleep", 5, "both targets to exec")
        for p in (to_sleep, to_engine):
            wait_lines(recs[p.pid][1], 12)
            assert_running_untraced(p.pid)
            rec = recs[p.pid][0]
            rec.send_signal(signal.SIGTERM)
            _, err = finish(rec)
            assert rec.returncode == 0 and "Traceback" not in err
            lines = err.strip().splitlines()
            # first line: the shell is not an engine; then one line for the exec
            assert len(lines) == 2 and ("no debug info" in lines[0] or "not a hftmem" in lines[0]), err
            expect_exe = "/sleep" if p is to_sleep else str(engine_binary)
            assert f"process {p.pid} exec'd " in lines[1] and expect_exe in lines[1], err
            samples = list(Recording.open(str(recs[p.pid][1])).samples())
            names = [s.status.name for s in samples]
            assert names[0] == "sh" and names[-1] == Path(expect_exe).name[:15], names
            if p is to_engine:
                assert samples[-1].engine.magic == b"HFTMEM01"
                assert samples[-1].engine.pid == p.pid
            else:
                assert all(s.engine is None for s in samples)
            assert_running_untraced(p.pid)
    finally:
        for rec, _ in recs.values():
            kill_quietly(rec)
        for p in (to_sleep, to_engine):
            stop_process(p.pid)


def test_zombie_target_one_line_each_and_left_a_zombie(tmp_path):
    child = subprocess.Popen(["true"])
    wait_for(lambda: proc_status(child.pid)["State"].startswith("Z"), 5, "the child to become a zombie")
    try:
        for cmd in (*HEADLESS_ON_A_PID, "allocs"):
            r = run_cli(*_headless(cmd, child.pid, tmp_path), timeout=20)
            assert r.returncode == 1, (cmd, r.stdout, r.stderr)
            one_line(r.stderr, f"process {child.pid} is a zombie")
        assert proc_status(child.pid)["State"].startswith("Z")  # not reaped, not touched
        assert not (tmp_path / f"r{child.pid}.jsonl").exists()
    finally:
        child.wait()


@pytest.fixture
def stripped_engine(engine_binary, tmp_path):
    exe = tmp_path / "engine-stripped"
    shutil.copy(engine_binary, exe)
    subprocess.run(["strip", str(exe)], check=True)
    proc = subprocess.Popen([str(exe)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: proc_status(proc.pid)["Threads"] >= "3", 5, "the stripped engine's threads")
    yield proc.pid, exe
    stop_process(proc.pid)


def test_stripped_engine_proc_parts_work_symbols_say_no_debug_info(stripped_engine, tmp_path):
    pid, exe = stripped_engine
    r = run_cli("snapshot", str(pid), "--json", "--no-perf")
    assert r.returncode == 0, r.stderr
    snap = json.loads(r.stdout)
    assert snap["engine"] is None and snap["status"]["vm_rss_kb"] > 0
    assert len(snap["mappings"]) == len(Path(f"/proc/{pid}/maps").read_text().splitlines())
    assert any("no debug info" in n and "hftmem_engine_stats" in n for n in snap["notes"]), snap["notes"]
    for what in ("hftmem_engine_stats", "hftmem_last_order.price"):
        r = run_cli("dump", str(pid), what)
        assert r.returncode == 1
        one_line(r.stderr, "no debug info", str(exe))
    # Raw addresses still read: the executable's first mapping starts with the ELF magic.
    first = next(ln for ln in Path(f"/proc/{pid}/maps").read_text().splitlines() if ln.endswith(str(exe)))
    r = run_cli("dump", str(pid), "0x" + first.split("-")[0], "--len", "4")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(":", 1)[1].split() == ["0x7f", "0x45", "0x4c", "0x46"]
    r = run_cli(*_headless("record", pid, tmp_path))
    assert r.returncode == 0
    one_line(r.stderr, "engine:", "no debug info")
    assert len(list(Recording.open(str(tmp_path / f"r{pid}.jsonl")).samples())) >= 1
    assert_running_untraced(pid)


PY_TARGET = (
    "import ctypes, sys, time\n"
    "b = ctypes.create_string_buffer(b'hftmem-fault-marker', 64)\n"
    "print(ctypes.addressof(b), flush=True)\n"
    "sys.stdin.read()\n"
)


def test_python_process_as_target(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", PY_TARGET], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        addr = int(proc.stdout.readline())
        r = run_cli("snapshot", str(proc.pid), "--json", "--no-perf")
        assert r.returncode == 0, r.stderr
        snap = json.loads(r.stdout)
        assert snap["engine"] is None and snap["status"]["name"].startswith("python")
        assert any(n.startswith("engine:") for n in snap["notes"]), snap["notes"]
        r = run_cli("dump", str(proc.pid), hex(addr), "--len", "19", "--format", "s")
        assert r.returncode == 0 and '"hftmem-fault-marker"' in r.stdout, (r.stdout, r.stderr)
        r = run_cli("dump", str(proc.pid), "hftmem_engine_stats")
        assert r.returncode == 1
        one_line(r.stderr, "hftmem_engine_stats")
        r = run_cli("audit", str(proc.pid), "--window", "0")
        assert r.returncode == 0 and "memory locked" in r.stdout, r.stderr
        assert_running_untraced(proc.pid)
    finally:
        proc.stdin.close()
        proc.wait(timeout=5)


MANY = 100_000


@pytest.fixture
def map_count_for_many():
    """Room for 100,000 mappings: vm.max_map_count defaults to 65,530 (raised for the test, restored)."""
    knob = Path("/proc/sys/vm/max_map_count")
    before = int(knob.read_text())
    if before < MANY + 1000:
        try:
            knob.write_text(str(MANY + 10_000))
        except OSError as e:
            pytest.skip(f"vm.max_map_count is {before} and cannot be raised here ({e.strerror})")
    yield
    if before < MANY + 1000:
        knob.write_text(str(before))


@pytest.mark.slow
def test_target_with_100000_mappings(map_count_for_many, tmp_path):
    helper = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fixtures" / "many_mappings.py"), str(MANY)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert helper.stdout.readline().startswith("ready"), "many_mappings did not start"
        pid = helper.pid
        r = run_cli("snapshot", str(pid), "--json", "--no-perf", timeout=120)
        assert r.returncode == 0, r.stderr
        snap = json.loads(r.stdout)
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
        assert len(maps) > MANY and len(snap["mappings"]) == len(maps)
        # A read-only mapping near the end of 100,000: found and read zero-stop like any other.
        last = next(m for m in reversed(maps) if m.split()[1] == "r--p")
        r = run_cli("dump", str(pid), "0x" + last.split("-")[0], "--len", "8")
        assert r.returncode == 0, r.stderr
        assert_running_untraced(pid)
    finally:
        helper.stdin.close()
        helper.wait(timeout=10)
