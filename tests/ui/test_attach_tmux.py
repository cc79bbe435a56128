"""End to end in a real terminal: `hftmem attach PID` in a 120x40 tmux, keys sent, screen read.

The done-when of issue 5: RSS, the [heap]/[stack] rows, allocator gauges and the latency
history on screen quickly; `leak` turns the leak verdict on within 30 s; `q` quits and leaves
the engine running with TracerPid 0; SIGTERM does the same and restores the terminal.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.conftest import proc_status, run_cli
from tests.helpers import attach_command, gone, needs_tmux, wait_for

pytestmark = needs_tmux


def assert_untraced(pid: int) -> None:
    status = proc_status(pid)
    assert status["TracerPid"] == "0"
    assert not status["State"].startswith(("T", "t", "Z")), status["State"]


@pytest.mark.slow
def test_attach_shows_everything_then_leak_verdict_then_quits(engine, tmux):
    pid = engine()
    t = tmux(attach_command(pid))
    t.wait_for(f"pid {pid}", "observing", timeout=20)  # python start-up and gdb on the ELF
    t.wait_for("RSS", "MiB", "leak verdict", timeout=3)
    t.keys("2")
    t.wait_for("[heap]", "[stack]", "Kbytes", timeout=3)
    t.keys("4")
    t.wait_for("hftmem_order_pool", "/4,096 live", "hftmem_scratch_arena", "hftmem_md_ring", timeout=3)
    t.keys("5")
    t.wait_for("max loop gap per second", "p99.9", "now", timeout=3)
    assert_untraced(pid)

    t.keys("1")
    r = run_cli("scenario", str(pid), "--on", "leak")
    assert r.returncode == 0, r.stderr
    t.wait_for("GROWING", "MiB/min", timeout=30)

    t.keys("7")
    t.wait_for("memory locked", "swap", timeout=15)  # the readiness audit lists its checks

    t.keys("q")
    t.wait_for("EXITED 0", timeout=10)
    assert_untraced(pid)
    assert os.path.exists(f"/proc/{pid}")


@pytest.mark.slow
def test_sigterm_restores_the_terminal_and_leaves_the_engine(engine, tmux):
    pid = engine()
    t = tmux(attach_command(pid, "--graph", "block"))
    t.wait_for(f"pid {pid}", "RSS", timeout=20)
    os.kill(t.hftmem_pid(), signal.SIGTERM)
    screen = t.wait_for("EXITED", timeout=10)
    assert f"EXITED {128 + signal.SIGTERM}" in screen
    assert "RSS history" not in screen  # the alternate screen is gone: the shell's screen is back
    assert_untraced(pid)


@pytest.mark.slow
def test_ctrl_c_quits_and_sighup_ends_it(engine, tmux):
    """ctrl+c quits like q; closing the terminal (tmux server gone: SIGHUP) ends hftmem too."""
    pid = engine()
    t = tmux(attach_command(pid))
    t.wait_for(f"pid {pid}", "RSS", timeout=20)
    t.keys("C-c")
    t.wait_for("EXITED 0", timeout=10)
    assert_untraced(pid)

    t2 = tmux(attach_command(pid))
    t2.wait_for(f"pid {pid}", "RSS", timeout=20)
    hftmem = t2.hftmem_pid()
    t2.kill()  # the terminal goes away: the kernel sends SIGHUP to the foreground process group
    try:
        wait_for(lambda: gone(hftmem), 10, "hftmem to end with its terminal")
    except AssertionError:
        os.kill(hftmem, signal.SIGKILL)  # do not leave it behind
        raise AssertionError("hftmem survived the loss of its terminal") from None
    assert_untraced(pid)
