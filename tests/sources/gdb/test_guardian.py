"""The guardian run as ``python -m hftmem_tui.sources.gdb.guardian``: what it does when gdb dies.

Judged from /proc: the target ends running and untraced, and the guardian exits by itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from hftmem_tui.sources import procfs
from hftmem_tui.sources.gdb.guardian import MODULE, Guardian
from hftmem_tui.sources.gdb.session import GdbSession
from hftmem_tui.sources.memory import read_memory
from hftmem_tui.sources.watchpoint import resolve_target
from tests.conftest import proc_status
from tests.helpers import wait_for


def state(pid: int) -> str:
    return proc_status(pid)["State"][0]


def exited(g: Guardian) -> bool:
    return g.poll() is not None


def my_children() -> list[int]:
    me = os.getpid()
    return [int(c) for c in procfs.read_text(me, f"task/{me}/children").split()]


def guardian_of(session_children: list[int]) -> list[int]:
    return [c for c in session_children if MODULE in procfs.read_text(c, "cmdline").split("\0")]


@pytest.fixture
def sleepers():
    """Two disposable processes: a target and a stand-in for gdb; both killed at the end."""
    procs = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    yield procs
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
        p.wait()


def test_guardian_sigconts_a_target_left_group_stopped_when_gdb_dies(sleepers):
    target, gdb = sleepers
    g = Guardian(target.pid, gdb.pid, was_stopped=False)
    try:
        g.wait_ready(20)
        assert procfs.read_text(g.pid, "cmdline").split("\0")[1:3] == ["-m", MODULE]
        os.kill(target.pid, signal.SIGSTOP)  # what a gdb dying mid-stop can leave behind
        wait_for(lambda: state(target.pid) == "T", 5, "the target to stop")
        gdb.kill()
        gdb.wait()
        wait_for(lambda: exited(g), 10, "the guardian to exit")
        assert g.poll() == 0
        wait_for(lambda: state(target.pid) in "RS", 2, "the target to run again")
        assert proc_status(target.pid)["TracerPid"] == "0"
    finally:
        g.release()


def test_guardian_leaves_a_target_stopped_before_we_came(sleepers):
    target, gdb = sleepers
    os.kill(target.pid, signal.SIGSTOP)
    wait_for(lambda: state(target.pid) == "T", 5, "the target to stop")
    g = Guardian(target.pid, gdb.pid, was_stopped=True)
    try:
        g.wait_ready(20)
        gdb.kill()
        gdb.wait()
        wait_for(lambda: exited(g), 10, "the guardian to exit")
        assert state(target.pid) == "T" and proc_status(target.pid)["TracerPid"] == "0"
    finally:
        g.release()


def test_guardian_exits_on_eof_after_a_clean_detach(sleepers):
    target, gdb = sleepers
    g = Guardian(target.pid, gdb.pid, was_stopped=False)
    g.wait_ready(20)
    g.gdb_detached()
    t0 = time.monotonic()
    g.release()
    assert exited(g) and g.poll() == 0 and time.monotonic() - t0 < 5
    assert gdb.poll() is None  # a clean detach: the guardian never touches gdb
    assert state(target.pid) in "RS"


@pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")
def test_gdb_sigkilled_under_a_written_watchpoint(engine):
    """gdb SIGKILLed while a watchpoint on a field written once a second is armed: the kernel
    drops the tracer but leaves DR7 enabled; the -m guardian clears it before the next write."""
    pid = engine()
    spec = resolve_target(pid, "hftmem_engine_stats.window_index")
    before = set(my_children())
    with GdbSession(pid, max_rate=0) as s:
        s.watch(spec)
        helpers = set(my_children()) - before
        guardians = guardian_of(list(helpers))
        assert len(guardians) == 1, helpers
        gdb = [c for c in helpers if procfs.read_comm(c) == "gdb"]
        assert len(gdb) == 1, helpers
        os.kill(gdb[0], signal.SIGKILL)
        wait_for(lambda: proc_status(pid)["TracerPid"] == "0", 5, "the kernel to drop the tracer")
        wait_for(lambda: not procfs.process_alive(guardians[0]) or procfs.read_stat(guardians[0]).state == "Z",
                   10, "the guardian to clean up and exit")
        start = int.from_bytes(read_memory(pid, spec.address, spec.length), "little")
        wait_for(lambda: int.from_bytes(read_memory(pid, spec.address, spec.length), "little") != start, 5,
                   "the engine to write window_index again (DR7 cleared, no SIGTRAP)")
    assert proc_status(pid)["TracerPid"] == "0" and state(pid) in "RS"
    assert all(not procfs.process_alive(c) for c in helpers)

