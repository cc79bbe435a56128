"""End to end in a real terminal: `hftmem attach PID` in a 120x40 tmux, keys sent, screen read.

The done-when of issue 5: RSS, the [heap]/[stack] rows, allocator gauges and the latency
history on screen quickly; `leak` turns the leak verdict on within 30 s; `q` quits and leaves
the engine running with TracerPid 0; SIGTERM does the same and restores the terminal.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import ROOT, proc_status, run_cli

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")


class Tmux:
    def __init__(self, command: str, width: int = 120, height: int = 40) -> None:
        self.name = f"hftmem-test-{uuid.uuid4().hex[:8]}"
        # A private server (-L) with no config (-f /dev/null): other tmux users cannot resize it.
        self.base = ["tmux", "-L", self.name, "-f", "/dev/null"]
        # COLUMNS/LINES (pytest sets them) would override the real terminal size in Textual.
        # The shell stays after hftmem exits, so the test can read its exit status on screen.
        subprocess.run([*self.base, "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                        f"cd {ROOT} && env -u COLUMNS -u LINES {command}; echo EXITED $?; sleep 600"], check=True,
                       stdin=subprocess.DEVNULL)
        subprocess.run([*self.base, "resize-window", "-t", self.name, "-x", str(width), "-y", str(height)],
                       check=True)

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-t", self.name], capture_output=True,
                              text=True, check=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, *needles: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if all(n in text for n in needles):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needles} not on screen within {timeout} s:\n{text}")
            time.sleep(0.1)

    def hftmem_pid(self) -> int:
        shell = subprocess.run([*self.base, "display", "-p", "-t", self.name, "#{pane_pid}"], capture_output=True,
                               text=True, check=True).stdout.strip()
        children = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True).stdout.split()
        return int(children[0])

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


@pytest.fixture
def tmux():
    sessions: list[Tmux] = []

    def start(command: str) -> Tmux:
        t = Tmux(command)
        sessions.append(t)
        return t

    yield start
    for t in sessions:
        t.kill()


def attach_command(pid: int, *extra: str) -> str:
    return f"{sys.executable} -m hftmem_tui.cli attach {pid} {' '.join(extra)}"


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
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{hftmem}") and not proc_status(hftmem)["State"].startswith("Z"):
        if time.monotonic() > deadline:
            os.kill(hftmem, signal.SIGKILL)  # do not leave it behind
            raise AssertionError("hftmem survived the loss of its terminal")
        time.sleep(0.1)
    assert_untraced(pid)
