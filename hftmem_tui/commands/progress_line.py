"""One progress line on stderr for long headless work, shown only when stderr is a terminal.

Redrawn in place (carriage return, erase to end of line) and erased when the work ends, so the
command's own output (stdout) is untouched and a pipe or log file never sees it.
"""

from __future__ import annotations

import sys
from typing import TextIO


class ProgressLine:
    """``update(text)`` redraws the line, ``clear()`` erases it; both do nothing off a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        try:
            self.enabled = self.stream.isatty()
        except (AttributeError, ValueError):  # closed or not a real stream
            self.enabled = False
        self._shown = False

    def update(self, text: str) -> None:
        if not self.enabled:
            return
        self.stream.write(f"\r\x1b[K{text}")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    def __call__(self, text: str) -> None:
        """As a callback: empty text clears the line."""
        self.update(text) if text else self.clear()
