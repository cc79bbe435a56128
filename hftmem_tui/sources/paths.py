"""Where hftmem keeps what it can rebuild (symbol caches, engines built on first use) and its small state."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/hftmem``, by default ``~/.cache/hftmem``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hftmem"


def state_root() -> Path:
    """``$XDG_STATE_HOME/hftmem``, by default ``~/.local/state/hftmem`` (e.g. the demo tour's progress)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hftmem"


def tour_progress_path() -> Path:
    """Where ``hftmem demo`` keeps the tour's progress, so it resumes at the chapter left."""
    return state_root() / "tour.json"
