"""Helpers for the fault suite: real inspectors against real targets, judged from /proc.

Every test module here sets ``pytestmark = pytest.mark.fault`` so `pytest -m fault` runs the
suite alone; the default run includes it.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.conftest import proc_status
from tests.helpers import children, wait_for


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
