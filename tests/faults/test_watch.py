"""Faults under `hftmem watch --via gdb` (the one ptrace path): gdb killed under an armed
watchpoint; the inspector killed with SIGKILL, SIGTERM or SIGHUP while ptrace-attached. Each
time the engine ends running and untraced, checked from /proc, and no gdb is left behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.conftest import proc_status
from tests.faults.conftest import finish, kill_quietly, one_line
from tests.helpers import children, gone, spawn_cli, wait_for

pytestmark = [pytest.mark.fault, pytest.mark.slow]

# Never written by the engine: the watchpoint stays armed with no hit (a hot field would be
# disarmed by the gdb rate guard, ending the session on its own).
COLD_FIELD = "hftmem_engine_stats.pool_capacity"


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _armed_watch(pid: int):
    """`hftmem watch --via gdb` on ``pid``, returned once gdb is attached (TracerPid set) and armed."""
    proc = spawn_cli("watch", str(pid), COLD_FIELD, "--via", "gdb", "--timeout", "60")
    wait_for(lambda: proc_status(pid)["TracerPid"] != "0" or proc.poll() is not None, 30, "gdb to attach")
    assert proc.poll() is None, proc.communicate()
    first = proc.stdout.readline()  # printed once the watchpoint is armed
    assert first.startswith(f"watching {COLD_FIELD}") and "via gdb" in first, first
    helpers = {c: _comm(c) for c in children(proc.pid)}
    assert "gdb" in helpers.values(), helpers
    return proc, helpers


def _untraced_and_running(pid: int) -> None:
    """Within 3 s: TracerPid 0, and no thread of the engine stopped (t/T)."""
    def ok() -> bool:
        if proc_status(pid)["TracerPid"] != "0":
            return False
        states = [Path(f"/proc/{pid}/task/{t}/status").read_text().split("State:")[1].split()[0]
                  for t in os.listdir(f"/proc/{pid}/task")]
        return not any(s in ("t", "T") for s in states)

    wait_for(ok, 3, f"engine {pid} untraced with no stopped thread")


def test_gdb_killed_under_an_armed_watchpoint(engine):
    pid = engine()
    proc, helpers = _armed_watch(pid)
    try:
        gdb = next(c for c, name in helpers.items() if name == "gdb")
        os.kill(gdb, signal.SIGKILL)
        _, err = finish(proc)
        assert proc.returncode == 1
        one_line(err, "gdb exited")
    finally:
        kill_quietly(proc)
    _untraced_and_running(pid)
    wait_for(lambda: all(gone(c) for c in helpers), 5, "gdb and its guardian to exit")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_inspector_killed_while_ptrace_attached(engine, sig):
    pid = engine()
    proc, helpers = _armed_watch(pid)
    try:
        proc.send_signal(sig)
        out, err = finish(proc)
        assert "Traceback" not in err
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
        else:  # unwound: detached and said what the session cost
            assert proc.returncode == 128 + sig, (proc.returncode, err)
            assert "detached (TracerPid 0)" in out, out
    finally:
        kill_quietly(proc)
    _untraced_and_running(pid)  # SIGKILL: the guardian detaches gdb, or the kernel on gdb's death
    wait_for(lambda: all(gone(c) for c in helpers), 5, "gdb and its guardian to exit")
