"""Faults around the TUI (`hftmem attach`) in a real terminal (tmux): the target killed under it,
the TUI killed with SIGKILL/SIGTERM/SIGHUP, the terminal shrunk to 40x10 and back. The engine is
checked from /proc afterwards: running, untraced, never stopped."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, proc_status
from tests.disturbance import EngineStopMonitor
from tests.faults.conftest import assert_running_untraced
from tests.helpers import children, gone, wait_for

pytestmark = [pytest.mark.fault, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (a real terminal)")]


_servers = itertools.count()


# Runs the app as its child and writes its return code (negative: killed by that signal) to a
# file: tmux 3.3 sometimes marks a pane dead before it has the exit status.
_WRAPPER = "import subprocess, sys; r = subprocess.run(sys.argv[2:]); open(sys.argv[1], 'w').write(str(r.returncode))"


class TmuxTui:
    """`hftmem attach PID` in a pane of a private tmux server; the pane stays after the app exits."""

    def __init__(self, name: str, tmp: Path) -> None:
        self.socket = f"hftmem-faults-{os.getpid()}-{next(_servers)}"  # a server of its own: no reuse races
        self.name = name
        self.status_file = tmp / f"{name}.status"

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True,
                              timeout=10).stdout

    def start(self, pid: int, width: int = 120, height: int = 40) -> None:
        env = dict(os.environ, TERM="xterm-256color")
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-s", self.name,
                        "-x", str(width), "-y", str(height)], check=True, env=env, timeout=10)
        self.tmux("set-option", "-t", self.name, "remain-on-exit", "on")
        self.tmux("respawn-pane", "-k", "-t", self.name, "-c", str(ROOT), shlex.join(
            [sys.executable, "-c", _WRAPPER, str(self.status_file), sys.executable, "-m", "hftmem_tui.cli",
             "attach", str(pid)]))
        self.wait_text("observing", 30)
        wrapper = int(self.tmux("display", "-p", "-t", self.name, "#{pane_pid}"))
        self.pid = children(wrapper)[0]  # the app itself

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def wait_text(self, text: str, timeout: float = 10.0) -> None:
        wait_for(lambda: text in self.screen(), timeout, f"{text!r} on the screen")

    def info(self, fmt: str) -> str:
        return self.tmux("display", "-p", "-t", self.name, fmt).strip()

    def dead(self) -> bool:
        return self.status_file.exists() and self.status_file.read_text() != ""

    def returncode(self) -> int:
        return int(self.status_file.read_text())

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tui(tmp_path):
    made: list[TmuxTui] = []

    def make(name: str = "tui") -> TmuxTui:
        made.append(TmuxTui(f"{name}-{len(made)}", tmp_path))
        return made[-1]

    yield make
    for t in made:
        t.close()


def test_target_killed_under_the_tui_shows_a_notice_and_quits_cleanly(engine, tui):
    pid = engine()
    t = tui()
    t.start(pid)
    os.kill(pid, signal.SIGKILL)
    t.wait_text(f"process {pid} exited", 10)
    assert "target gone" in t.screen() and not t.dead()
    t.tmux("send-keys", "-t", t.name, "q")
    wait_for(t.dead, 10, "the TUI to quit on q")
    assert t.returncode() == 0
    assert t.info("#{alternate_on}") == "0"  # the terminal is back on its normal screen
    assert gone(pid)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_tui_killed_while_observing_leaves_the_engine_running(engine, tui, sig):
    pid = engine()
    t = tui()
    with EngineStopMonitor(pid) as mon:
        t.start(pid)
        perf = [c for c in children(t.pid) if not gone(c)]
        assert perf, "the TUI runs perf stat"
        os.kill(t.pid, sig)
        wait_for(t.dead, 10, f"the TUI to exit on {sig.name}")
    if sig == signal.SIGKILL:
        assert t.returncode() == -signal.SIGKILL
    else:  # unwound: exit status 128+N and the terminal restored
        assert t.returncode() == 128 + sig
        assert t.info("#{alternate_on}") == "0"
    wait_for(lambda: all(gone(c) for c in perf), 5, "perf to exit with the TUI")
    assert not mon.disturbed, str(mon)
    assert_running_untraced(pid)


def _uptime(screen: str) -> str | None:
    m = re.search(r"\bup (\d+m\d+s)", screen)
    return m.group(1) if m else None


def test_terminal_resized_to_40x10_and_back(engine, tui):
    pid = engine()
    t = tui()
    t.start(pid)
    t.tmux("resize-window", "-t", t.name, "-x", "40", "-y", "10")
    t.wait_text("too small", 10)
    time.sleep(1.5)  # samples keep arriving while nothing can be drawn
    t.tmux("resize-window", "-t", t.name, "-x", "120", "-y", "40")
    t.wait_text("observing", 10)
    t.wait_text("RSS", 5)
    wait_for(lambda: _uptime(t.screen()) is not None, 5, "the header's uptime")
    first = _uptime(t.screen())
    wait_for(lambda: _uptime(t.screen()) not in (None, first), 5, "the header to update again")
    assert not t.dead()
    assert_running_untraced(pid)
    assert proc_status(pid)["TracerPid"] == "0"
