"""The tour's progress on disk (``$XDG_STATE_HOME/hftmem/tour.json``): where to resume, what was seen.

A damaged or foreign file is treated as no progress (the tour starts at chapter one) rather
than an error: losing a bookmark must never stop the demo.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hftmem_tui.sources.paths import tour_progress_path

VERSION = 1


@dataclass
class TourProgress:
    """``current``: the chapter to resume at; ``observed``: chapter -> what was observed (one line)."""

    current: str | None = None
    observed: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None, known: tuple[str, ...] = ()) -> TourProgress:
        """Read the progress file; unknown chapters (``known`` given) are dropped."""
        path = path or tour_progress_path()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return cls()
        current = data.get("current")
        observed = data.get("observed")
        if not isinstance(current, str) or (known and current not in known):
            current = None
        if not isinstance(observed, dict):
            observed = {}
        observed = {k: str(v) for k, v in observed.items() if isinstance(k, str) and (not known or k in known)}
        return cls(current, observed)

    def save(self, path: Path | None = None) -> None:
        """Write atomically (a crash mid-write leaves the previous file)."""
        path = path or tour_progress_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tour.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"version": VERSION, "current": self.current, "observed": self.observed}, f, indent=1)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
