"""Helpers for the fault suite: real inspectors against real targets, judged from /proc.

Every test module here sets ``pytestmark = pytest.mark.fault`` so `pytest -m fault` runs the
suite alone; the default run includes it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, proc_status


def spawn_cli(*args: str, **kw) -> subprocess.Popen:
    """Start the real `hftmem` command in the background (stdout/stderr captured as text)."""
    return subprocess.Popen([sys.executable, "-m", "hftmem_tui.cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def finish(proc: subprocess.Popen, timeout: float = 15.0) -> tuple[str, str]:
    """Wait for ``proc`` and return (stdout, stderr); SIGKILL it if it overstays."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=5)
        raise AssertionError(f"{proc.args[3:]} still running after {timeout} s; stderr: {err!r}") from None


def one_line(stderr: str, *expect: str) -> str:
    """The only stderr line, containing every ``expect`` and no traceback."""
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    for e in expect:
        assert e in lines[0], (e, lines[0])
    return lines[0]


def assert_running_untraced(pid: int) -> None:
    """The target as /proc shows it: alive, not stopped, not a zombie, no tracer."""
    st = proc_status(pid)
    assert st["TracerPid"] == "0", st
    assert st["State"][0] in "RSD", st


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def gone(pid: int) -> bool:
    try:
        return proc_status(pid).get("State", "").startswith(("Z", "X"))
    except OSError:
        return True


def wait_for(cond, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what() if callable(what) else what}"
        time.sleep(0.05)


def wait_lines(path: Path, n: int, timeout: float = 15.0) -> None:
    wait_for(lambda: path.exists() and path.read_bytes().count(b"\n") >= n, timeout, f"{n} lines in {path}")


def perf_child(pid: int, timeout: float = 10.0) -> int:
    """The `perf stat` child of inspector ``pid`` once it runs."""
    found: list[int] = []

    def look() -> bool:
        for c in children(pid):
            try:
                if Path(f"/proc/{c}/comm").read_text().strip() == "perf":
                    found.append(c)
                    return True
            except OSError:
                pass
        return False

    wait_for(look, timeout, f"a perf child of {pid}")
    return found[0]


def kill_quietly(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)
