"""UI fixtures: hftmem in a real terminal (tmux)."""

from __future__ import annotations

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
