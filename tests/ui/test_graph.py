"""The history graph's pure parts: columns per time step, braille/block rows, sparklines, axis."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from hftmem_tui.ui.graph import HistoryGraph, fmt_age, sparkline


def test_sparkline_scales_to_its_own_range():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5], 10) == "▄▄▄"
    assert sparkline([0, 0], 4) == "▁▁"
    assert len(sparkline(list(range(100)), 20)) == 20
    assert sparkline([], 5) == ""


def test_fmt_age():
    assert fmt_age(5) == "-5s"
    assert fmt_age(120) == "-2m"
    assert fmt_age(150) == "-2m30s"
    assert fmt_age(7260) == "-2h01m"


def test_columns_place_points_by_time():
    g = HistoryGraph(style="block", step=1.0)
    g.points = [(0.0, 1.0), (1.0, 2.0), (3.0, 5.0)]  # t=2 missing: a gap, not a shifted point
    assert g.columns(5) == [None, 1.0, 2.0, None, 5.0]
    b = HistoryGraph(style="braille", step=1.0)
    b.points = g.points
    assert len(b.columns(3)) == 6  # two dot columns per cell


class GraphApp(App):
    def __init__(self, style: str) -> None:
        super().__init__()
        self.style = style

    def compose(self) -> ComposeResult:
        yield HistoryGraph(style=self.style, step=1.0, fmt=lambda v: f"{v:.0f}")


def _rows(style: str, points) -> list[str]:
    async def run() -> list[str]:
        app = GraphApp(style)
        async with app.run_test(size=(40, 8)) as pilot:
            graph = app.query_one(HistoryGraph)
            graph.set_points(points)
            await pilot.pause()
            return [graph.render_line(y).text for y in range(graph.size.height)]

    return asyncio.run(run())


def test_block_and_braille_rows_and_axis():
    points = [(float(t), float(t)) for t in range(60)]
    for style in ("block", "braille"):
        rows = _rows(style, points)
        assert rows[0].strip().startswith("59")  # the top label is the max shown
        assert rows[-1].rstrip().endswith("now")
        assert ("-16s" if style == "block" else "-32s") in rows[-1]  # 16 cells back: 1 or 2 samples per cell
        body = "".join(rows[:-1])
        if style == "braille":
            assert any(0x2800 < ord(c) <= 0x28FF for c in body)
        else:
            assert "█" in body and not any(0x2800 <= ord(c) <= 0x28FF for c in body)
    empty = _rows("block", [])
    assert any("waiting for data" in r for r in empty)
