"""UI fixtures: hftmem in a real terminal (tmux)."""

from __future__ import annotations

import pytest

from tests.helpers import Tmux


@pytest.fixture
def tmux():
    """Factory: run a command in a fresh 120x40 tmux server; every server is killed at teardown."""
    sessions: list[Tmux] = []

    def start(command: str) -> Tmux:
        t = Tmux(command)
        sessions.append(t)
        return t

    yield start
    for t in sessions:
        t.kill()
