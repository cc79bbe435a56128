"""`hftmem demo --script` on the real engine: every chapter observed, and the engine never outlives it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hftmem_tui.demo.chapters import CHAPTERS, TourSample, chapter_names
from hftmem_tui.demo.tour_state import TourProgress
from hftmem_tui.feeds.sampler import LiveSampler
from hftmem_tui.sources.symbols import SymbolTable
from hftmem_tui.sources.watchpoint import HW_LENGTHS
from tests.conftest import ROOT, run_cli
from tests.helpers import wait_for

PID_LINE = re.compile(r"^demo engine pid (\d+):")


def engine_alive(pid: int) -> bool:
    """True while pid is a live (not zombie) hftmem engine."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return b"hftmem-engine" in cmd and " Z " not in state + " "


def tmp_names() -> set[str]:
    return set(os.listdir("/tmp"))


@pytest.fixture
def demo_env(engine_binary, tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "TMPDIR": str(tmpdir)}
    return env, tmp_path


@pytest.mark.slow
def test_script_observes_every_chapter_and_stops_its_engine(demo_env):
    env, tmp_path = demo_env
    before = tmp_names()
    r = run_cli("demo", "--script", env=env, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    pid = int(PID_LINE.match(lines[0]).group(1))
    rows = {ln.split()[0]: ln for ln in lines[1:-1]}
    assert list(rows) == list(chapter_names())
    for name, line in rows.items():
        assert line.split()[1] == "observed", line
        assert re.search(r"\d", line.split("s  ", 1)[1]), f"{name}: no numbers in {line!r}"
    assert lines[-1].startswith("8/8 chapters observed") and f"engine {pid} stopped" in lines[-1]
    assert not engine_alive(pid)
    progress = TourProgress.load(tmp_path / "state" / "hftmem" / "tour.json", chapter_names())
    assert set(progress.observed) == set(chapter_names())
    assert not list((tmp_path / "tmp").iterdir())
    assert not [n for n in tmp_names() - before if "hftmem" in n or str(pid) in n]


def test_script_single_chapter(demo_env):
    env, _ = demo_env
    r = run_cli("demo", "--script", "--chapter", "double-free", env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^double-free\s+observed .*pool_double_frees \+\d+", r.stdout, re.M)
    assert "1/1 chapters observed" in r.stdout


def test_unknown_chapter_is_one_line(demo_env):
    env, _ = demo_env
    r = run_cli("demo", "--script", "--chapter", "heap-spray", env=env)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "unknown chapter" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_engine_dies_with_the_demo(demo_env, sig):
    env, _ = demo_env
    proc = subprocess.Popen([sys.executable, "-m", "hftmem_tui.cli", "demo", "--script"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        m = PID_LINE.match(proc.stdout.readline())
        assert m, proc.stderr.read()
        pid = int(m.group(1))
        assert engine_alive(pid)
        proc.stdout.readline()  # mid-tour: the first chapter is done
        proc.send_signal(sig)
        proc.wait(timeout=10)
        wait_for(lambda: not engine_alive(pid), 5, f"engine {pid} to end with hftmem demo after {sig.name}")
        if sig == signal.SIGTERM:
            assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_watch_targets_resolve_and_samples_convert_on_the_real_engine(engine):
    pid = engine()
    with SymbolTable.for_pid(pid) as table:
        for c in CHAPTERS:
            if c.watch:
                assert table.resolve_expr(c.watch).size in HW_LENGTHS, c.watch
    with LiveSampler(pid, interval_s=0.2, perf=False) as sampler:
        s = TourSample.from_live(sampler.sample())
    assert s.rss_kb > 0 and s.engine is not None and s.mappings
    assert {sym for sym, n in s.ring_pushed if n is not None} == {"hftmem_md_ring", "hftmem_md_ring_packed"}


def test_unwritable_state_dir_is_said_once_and_the_script_passes(demo_env):
    """A state directory that cannot be written (here: its parent is a file, which stops root too)
    costs the saved progress only: one stderr line, every chapter still run, exit 0."""
    env, tmp_path = demo_env
    (tmp_path / "not-a-dir").write_text("")
    env = {**env, "XDG_STATE_HOME": str(tmp_path / "not-a-dir" / "state")}
    r = run_cli("demo", "--script", "--chapter", "double-free", env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1/1 chapters observed" in r.stdout and "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hftmem: tour progress not saved ("), r.stderr


def test_progress_line_on_a_terminal_only(demo_env):
    """stderr a terminal: a progress line per chapter, erased after; a pipe: nothing on stderr."""
    env, _ = demo_env
    master, slave = os.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "hftmem_tui.cli", "demo", "--script", "--chapter", "double-free"],
                              stdout=subprocess.PIPE, stderr=slave, env=env, cwd=ROOT, timeout=60)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0
    assert b"\r\x1b[K[1/1] double-free: double-free on, watching for it" in seen
    assert seen.endswith(b"\r\x1b[K")
    r = run_cli("demo", "--script", "--chapter", "double-free", env=env, timeout=60)
    assert r.returncode == 0 and r.stderr == ""
