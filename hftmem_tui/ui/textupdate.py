"""Cheap Static updates: skip unchanged content, re-layout only when the line count changes.

A Static.update() re-runs the screen's layout by default; at one sample per second on every
text of a pane that was most of the TUI's CPU. The text of these widgets changes every tick
but their height rarely does.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


def set_text(widget: Static, content: Text | str) -> None:
    """Show ``content`` in ``widget``; no-op when equal, no layout pass when the height is unchanged."""
    text = content if isinstance(content, Text) else Text(content)
    old = widget.content
    if isinstance(old, Text) and old == text:
        return
    width = widget.size.width
    fits = width > 0 and all(len(line) <= width for line in text.plain.split("\n"))  # no wrapping
    same_height = fits and isinstance(old, Text) and old.plain.count("\n") == text.plain.count("\n")
    widget.update(text, layout=not same_height)
