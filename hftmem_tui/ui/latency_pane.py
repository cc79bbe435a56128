"""Engine latency: the demo engine's max and p99.9 loop gap per one-second window, as history.

The engine keeps its last 64 windows itself, so the graphs start full at attach.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from hftmem_tui.model.history import History
from hftmem_tui.feeds.sample import Sample
from hftmem_tui.ui.graph import HistoryGraph
from hftmem_tui.ui.textupdate import set_text
from hftmem_tui.ui.units import fmt_ns


class LatencyHistory(Vertical):
    """Two graphs (max gap, p99.9 gap) per second and the worst of the last minute."""

    def __init__(self, *, graph_style: str = "braille", id: str | None = None) -> None:
        super().__init__(id=id)
        self.graph_style = graph_style

    def compose(self) -> ComposeResult:
        yield Static("waiting for the engine's stats block", id="latency-summary")
        yield Static("max loop gap per second", classes="graph-title")
        yield HistoryGraph(style=self.graph_style, step=1.0, fmt=fmt_ns, color="red", id="gap-max-graph")
        yield Static("p99.9 loop gap per second", classes="graph-title")
        yield HistoryGraph(style=self.graph_style, step=1.0, fmt=fmt_ns, color="yellow", id="gap-p999-graph")

    def set_graph_style(self, style: str) -> None:
        for g in self.query(HistoryGraph):
            g.set_style(style)

    def show_sample(self, sample: Sample, history: History) -> None:
        summary = self.query_one("#latency-summary", Static)
        if sample.engine is None:
            summary.update(Text("no engine stats block: loop latency is known only for the hftmem demo engine",
                                style="dim"))
            return
        mx, p = history.gap_max, history.gap_p999
        last_max = mx.last()
        last_p = p.last()
        minute = mx.window(60)
        worst = max((v for _, v in minute), default=0)
        e = sample.engine
        set_text(summary, Text.assemble(
            ("loop gap, last second: ", "bold"), ("max ", ""), (fmt_ns(last_max[1]) if last_max else "—", "bold red"),
            ("  p99.9 ", ""), (fmt_ns(last_p[1]) if last_p else "—", "bold yellow"),
            f"  worst max, last minute {fmt_ns(worst)}  loops/s {e.last_iterations:,}"))
        width = self.size.width * (2 if self.graph_style == "braille" else 1) + 1
        self.query_one("#gap-max-graph", HistoryGraph).set_points(mx.window(width))
        self.query_one("#gap-p999-graph", HistoryGraph).set_points(p.window(width))
