"""UI fixtures: hftmem in a real terminal (tmux); clock times in UTC for snapshots."""

from __future__ import annotations

import os
import time

import pytest

from tests.helpers import Tmux


@pytest.fixture
def tmux():
    """Factory: run a command in a fresh tmux server (120x40 unless told); every server is killed at teardown."""
    sessions: list[Tmux] = []

    def start(command: str, width: int = 120, height: int = 40) -> Tmux:
        t = Tmux(command, width, height)
        sessions.append(t)
        return t

    yield start
    for t in sessions:
        t.kill()


@pytest.fixture
def utc():
    """Clock times on screen in UTC, then the process's own zone back (snapshots are compared as drawn)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()
