"""Shared fixtures: the real demo engine, built from this checkout's native/ sources."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hftmem_tui.errors import SourceError
from hftmem_tui.sources.engine import ENGINE_BINARY, build_engine, source_dir
from hftmem_tui.sources.perf.uprobes import find_tracefs

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
FIXTURES = ROOT / "tests" / "fixtures"
TRACEFS = "/sys/kernel/tracing"


def ensure_tracefs() -> str | None:
    """As root, mount tracefs at /sys/kernel/tracing if no tracefs is mounted; what failed, or None.

    A fresh root machine boots without it, and the uprobe tests would skip instead of testing
    `allocs`. Left mounted afterwards: other sessions may be using it, and it costs nothing.
    Raises nothing (a failure is returned: the tests then skip, and .ci/run's skip gate fails).
    """
    try:
        find_tracefs()
        return None
    except SourceError:
        if os.geteuid() != 0:
            return None  # not ours to set up: the uprobe tests skip saying they need root
    try:
        r = subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"mount -t tracefs nodev {TRACEFS}: {e}"
    return None if r.returncode == 0 else f"mount -t tracefs nodev {TRACEFS}: {r.stderr.strip()}"


def pytest_configure(config: pytest.Config) -> None:
    # Before collection: the uprobe test modules decide at import whether tracefs is there.
    failed = ensure_tracefs()
    if failed:
        sys.stderr.write(f"tests: tracefs not mounted, the uprobe tests will skip ({failed})\n")


@pytest.fixture(scope="session")
def engine_binary() -> Path:
    """The engine built from native/ (incremental), so tests never run a stale installed binary."""
    src = source_dir()
    assert src is not None, "tests run from a checkout with native/"
    path = build_engine(src, build_dir=BUILD / "test-engine") / ENGINE_BINARY
    os.environ["HFTMEM_ENGINE"] = str(path)  # the CLI under test (and its subprocesses) use this one
    return path


def run_cli(*args: str, timeout: float = 60.0, env: dict | None = None, nice: int = 0) -> subprocess.CompletedProcess:
    """Run the real `hftmem` command (as `python -m hftmem_tui.cli`) and capture its output."""
    return subprocess.run([sys.executable, "-m", "hftmem_tui.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT,
                          preexec_fn=(lambda: os.nice(nice)) if nice else None)


def proc_status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict (read directly: tests check the product against /proc itself)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def vm_rss_kib(pid: int) -> int:
    return int(proc_status(pid)["VmRSS"].split()[0])


def stop_process(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL; reap it if it is our child."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:
                if not Path(f"/proc/{pid}").exists() or proc_status(pid).get("State", "").startswith("Z"):
                    return
            time.sleep(0.02)


@pytest.fixture
def engine(engine_binary):
    """Factory: start a real engine with `hftmem engine --detach ...`; every one is stopped at teardown."""
    started: list[int] = []

    def start(*args: str) -> int:
        r = run_cli("engine", "--detach", *args)
        assert r.returncode == 0, r.stderr
        pid = int(r.stdout.strip())
        started.append(pid)
        return pid

    yield start
    for pid in started:
        stop_process(pid)
