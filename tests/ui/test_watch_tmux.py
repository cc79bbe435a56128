"""End to end in a real terminal: a gdb watchpoint armed from the watch pane, then hftmem is killed.

Whatever ends hftmem (SIGTERM, SIGHUP, SIGKILL) while gdb holds the engine, the engine ends up
running and untraced (the exit hook detaches; after a SIGKILL, gdb's guardian does).
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.conftest import proc_status
from tests.helpers import attach_command, needs_tmux, wait_for

pytestmark = needs_tmux

FIELD = "hftmem_engine_stats.window_index"  # written about once a second


def arm_gdb_watch(t) -> None:
    t.wait_for("8 Watch", timeout=15)
    t.keys("8")
    t.wait_for("backend perf", timeout=10)
    t.keys("C-g", "/")
    t.wait_for("backend gdb", timeout=10)
    t.keys("-l", FIELD)
    t.keys("Enter")
    t.wait_for("Stop and inspect", timeout=30)
    t.keys("y")
    t.wait_for("ptrace-attached for 1 watchpoint", "attaching paused the engine", timeout=30)


def untraced_and_running(pid: int, timeout: float = 10.0) -> dict:
    """/proc status of the engine once it runs untraced; AssertionError (with its state) after ``timeout`` s."""
    def ok():
        st = proc_status(pid)
        return st if int(st["TracerPid"]) == 0 and st["State"][0] in "RS" else None

    return wait_for(ok, timeout, lambda: f"engine {pid} untraced and running (now {proc_status(pid)['State']}, "
                                         f"TracerPid {proc_status(pid)['TracerPid']})")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_with_an_armed_gdb_watch_detaches(engine, tmux, sig):
    pid = engine()
    t = tmux(attach_command(pid))
    arm_gdb_watch(t)
    assert int(proc_status(pid)["TracerPid"]) != 0
    t.wait_for("ms/hit", timeout=15)  # a hit logged, with the pause it caused (the field moves every second)
    os.kill(t.hftmem_pid(), sig)
    t.wait_for(f"EXITED {128 + sig}", timeout=30)
    untraced_and_running(pid, timeout=1.0)  # detached before hftmem exited


@pytest.mark.slow
def test_sigkill_with_an_armed_gdb_watch_leaves_the_engine_untraced(engine, tmux):
    pid = engine()
    t = tmux(attach_command(pid))
    arm_gdb_watch(t)
    os.kill(t.hftmem_pid(), signal.SIGKILL)
    untraced_and_running(pid, timeout=10.0)  # gdb reads EOF and detaches; its guardian checks
