"""A scrolling history graph drawn with the line API (one Strip per row), like memray's.

Braille cells give 2x4 dots per character (one sample per dot column); ``style="block"``
uses the eighth-blocks instead for fonts without braille (btop #971). The left gutter shows
the value range, the bottom row a time axis relative to the newest point ("-2m ... now").
Only ANSI base colours are used, so it reads the same in a 16-colour terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

BLOCKS = " ▁▂▃▄▅▆▇█"
SPARK = "▁▂▃▄▅▆▇█"
# Braille dot bits, bottom row first: (left column, right column).
_BRAILLE_ROWS = ((0x40, 0x80), (0x04, 0x20), (0x02, 0x10), (0x01, 0x08))


def _braille_cell(left: int, right: int) -> str:
    bits = 0
    for k in range(left):
        bits |= _BRAILLE_ROWS[k][0]
    for k in range(right):
        bits |= _BRAILLE_ROWS[k][1]
    return chr(0x2800 + bits) if bits else " "


# [left fill 0..4][right fill 0..4] -> the cell, bottom-up filled: one lookup per cell when drawing.
_BRAILLE = tuple(tuple(_braille_cell(a, b) for b in range(5)) for a in range(5))
GRAPH_STYLES = ("braille", "block")


def sparkline(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as eighth-block characters, scaled to their own min..max."""
    vals = list(values)[-width:] if width > 0 else []
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi <= lo:
        return SPARK[0 if hi == 0 else 3] * len(vals)
    span = hi - lo
    return "".join(SPARK[min(7, int((v - lo) / span * 7.999))] for v in vals)


def fmt_age(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"-{s}s"
    if s < 3600:
        return f"-{s // 60}m{s % 60:02d}s" if s % 60 else f"-{s // 60}m"
    return f"-{s // 3600}h{s % 3600 // 60:02d}m"


class HistoryGraph(Widget):
    """Filled area graph of (t, value) points, newest on the right.

    ``step``: the t distance one dot column stands for (the refresh interval, or 1 for
    per-second windows). ``fmt`` turns a value into the gutter label.
    """

    DEFAULT_CSS = """
    HistoryGraph { height: 8; min-height: 4; }
    """
    GUTTER = 10

    def __init__(self, *, style: str = "braille", step: float = 1.0, fmt: Callable[[float], str] = str,
                 color: str = "green", name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        if style not in GRAPH_STYLES:
            raise ValueError(f"graph style must be one of {', '.join(GRAPH_STYLES)}")
        self.graph_style = style
        self.step = step if step > 0 else 1.0
        self.fmt = fmt
        self.color = color
        self.points: list[tuple[float, float]] = []
        self._lines: list[Strip] | None = None
        self._lines_size: tuple[int, int] = (0, 0)

    def set_points(self, points: Sequence[tuple[float, float]]) -> None:
        """Show these points (oldest first); only the newest that fit the width are drawn."""
        self.points = list(points)
        self._lines = None
        self.refresh()

    def set_style(self, style: str) -> None:
        if style not in GRAPH_STYLES:
            raise ValueError(f"graph style must be one of {', '.join(GRAPH_STYLES)}")
        self.graph_style = style
        self._lines = None
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        if self._lines is None or self._lines_size != (width, height):
            self._lines = self._draw(width, height)
            self._lines_size = (width, height)
        return self._lines[y] if y < len(self._lines) else Strip.blank(width)

    # ------------------------------------------------------------------ drawing
    def columns(self, plot_w: int) -> list[float | None]:
        """One value (the max of its points) per dot column, newest last; None where no point fell."""
        per_cell = 2 if self.graph_style == "braille" else 1
        n = plot_w * per_cell
        cols: list[float | None] = [None] * n
        if not self.points or n <= 0:
            return cols
        t_last = self.points[-1][0]
        for t, v in reversed(self.points):
            back = int(round((t_last - t) / self.step))
            if back >= n:
                break
            i = n - 1 - back
            cols[i] = v if cols[i] is None else max(cols[i], v)  # type: ignore[type-var]
        return cols

    def _draw(self, width: int, height: int) -> list[Strip]:
        gutter = self.GUTTER if width > self.GUTTER + 10 else 0
        plot_w = max(0, width - gutter)
        plot_h = max(1, height - 1)
        cols = self.columns(plot_w)
        present = [v for v in cols if v is not None]
        axis_style = Style(dim=True)
        line_style = Style(color=self.color)
        if not present:
            rows = [Strip([Segment(" " * width)]) for _ in range(plot_h)]
            msg = "waiting for data"[:width]
            rows[plot_h // 2] = Strip([Segment(msg.center(width), axis_style)])
            return rows + [Strip([Segment(" " * width)])]
        lo, hi = min(present), max(present)
        if hi <= lo:
            lo, hi = (lo - 1, hi + 1) if hi == 0 else (lo * 0.98, hi * 1.02)
        else:
            lo = max(0.0, lo - (hi - lo) * 0.1) if lo >= 0 else lo - (hi - lo) * 0.1
        dots_per_row = 4 if self.graph_style == "braille" else 8
        total = plot_h * dots_per_row

        def level(v: float | None) -> int:
            if v is None:
                return 0
            return max(1, min(total, int(round((v - lo) / (hi - lo) * total))))

        levels = [level(v) for v in cols]
        out: list[Strip] = []
        for r in range(plot_h):  # r = 0 is the top row
            base = (plot_h - 1 - r) * dots_per_row  # dots below this row
            if self.graph_style == "braille":
                fills = [min(4, max(0, lv - base)) for lv in levels]
                body = "".join([_BRAILLE[fills[i]][fills[i + 1]] for i in range(0, 2 * plot_w, 2)])
            else:
                body = "".join(BLOCKS[min(8, max(0, lv - base))] for lv in levels)
            label = ""
            if gutter:
                if r == 0:
                    label = self.fmt(hi)
                elif r == plot_h - 1:
                    label = self.fmt(lo)
                label = label[: gutter - 1].rjust(gutter - 1) + " "
            out.append(Strip([Segment(label, axis_style), Segment(body, line_style)]))
        out.append(Strip([Segment(self._axis(plot_w, gutter), axis_style)]))
        return out

    def _axis(self, plot_w: int, gutter: int) -> str:
        """Tick labels every ~16 cells, aligned so that 'now' ends at the right edge."""
        per_cell = 2 if self.graph_style == "braille" else 1
        chars = [" "] * plot_w
        label = "now"
        pos = plot_w - len(label)
        if pos >= 0:
            chars[pos:] = label
        spacing = 16
        c = plot_w - 1 - spacing
        while c >= 0:
            age = (plot_w - 1 - c) * per_cell * self.step
            text = fmt_age(age)
            start = c - len(text) // 2
            if start >= 0 and start + len(text) < pos - 1:
                chars[start:start + len(text)] = text
            c -= spacing
        return " " * gutter + "".join(chars)
