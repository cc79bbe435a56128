"""`hftmem attach` on bad targets: one line on stderr, non-zero exit, before any terminal output."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import run_cli


def test_no_such_pid():
    r = run_cli("attach", "999999999")
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "999999999" in r.stderr and "Traceback" not in r.stderr
    assert "\x1b[" not in r.stdout + r.stderr  # the TUI never started


def test_kernel_thread_and_bad_args():
    r = run_cli("attach", "2")
    assert r.returncode != 0 and "kernel thread" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("attach", "1", "--graph", "ascii")
    assert r.returncode == 2 and "braille" in r.stderr
    r = run_cli("attach", "1", "--allocators", "/no/such/file.toml")
    assert r.returncode != 0 and "/no/such/file.toml" in r.stderr and "Traceback" not in r.stderr


def test_zombie():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(200):  # wait until it has exited but is not reaped: a zombie
            with open(f"/proc/{child.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            import time

            time.sleep(0.01)
        r = run_cli("attach", str(child.pid))
        assert r.returncode != 0 and "zombie" in r.stderr.lower() and "Traceback" not in r.stderr
    finally:
        child.wait()
