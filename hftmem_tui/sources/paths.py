"""Where hftmem keeps what it can rebuild: symbol caches, engines built on first use."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/hftmem``, by default ``~/.cache/hftmem``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hftmem"
