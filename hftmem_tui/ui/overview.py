"""Overview: the numbers top, `pmap` and `perf stat` would give, an RSS history and the leak verdict."""

from __future__ import annotations

import time

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from hftmem_tui.model.audit import fmt_kb
from hftmem_tui.model.history import History
from hftmem_tui.sources.sampler import LiveSample
from hftmem_tui.ui.graph import HistoryGraph

VERDICT_STYLE = {"growing": "bold white on red", "shrinking": "bold cyan", "flat": "bold green",
                 "insufficient data": "dim"}


def fmt_bytes(b: float) -> str:
    return fmt_kb(b / 1024)


def fmt_rate(v: float | None) -> str:
    if v is None:
        return "—"
    if v >= 1e9:
        return f"{v / 1e9:.1f}G"
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.1f}"


def leak_text(history: History) -> Text:
    v = history.leak
    t = Text("leak verdict: ", style="bold")
    t.append(f" {v.verdict.upper()} ", style=VERDICT_STYLE.get(v.verdict, ""))
    if v.verdict == "insufficient data":
        t.append(f"  {v.points} points; needs 8 over 20 s (pool warm-up is ignored)", style="dim")
        return t
    t.append(f"  slope {v.slope_mib_per_min:+.2f} MiB/min  (95%: {v.low_mib_per_min:+.2f} .. "
             f"{v.high_mib_per_min:+.2f})  confidence {v.confidence:.0%}")
    since = history.leak_since if v.verdict == "growing" else None
    if since is not None:
        t.append(f"  growing since {time.strftime('%H:%M:%S', time.localtime(since))}")
    elif v.since_t is not None:
        t.append(f"  fit since {time.strftime('%H:%M:%S', time.localtime(v.since_t))}", style="dim")
    return t


class OverviewPane(Vertical):
    """RSS, peak, swap, threads, CPU, fault rates; an RSS graph with a time axis; the leak verdict."""

    def __init__(self, *, graph_style: str = "braille", refresh_s: float = 1.0, id: str | None = None) -> None:
        super().__init__(id=id)
        self.graph_style = graph_style
        self.refresh_s = refresh_s

    def compose(self) -> ComposeResult:
        yield Static("waiting for the first sample", id="overview-stats")
        yield Static("RSS history", id="rss-title", classes="graph-title")
        yield HistoryGraph(style=self.graph_style, step=self.refresh_s, fmt=fmt_bytes, id="rss-graph")
        yield Static("", id="leak-verdict")
        yield Static("", id="overview-cost")

    def set_graph_style(self, style: str) -> None:
        self.graph_style = style
        self.query_one(HistoryGraph).set_style(style)

    def show_sample(self, sample: LiveSample, history: History) -> None:
        st = sample.status
        minflt = history.minflt.last()
        majflt = history.majflt.last()
        swap_kb = st.vm_swap_kb
        grid = Table.grid(padding=(0, 2))
        for _ in range(4):
            grid.add_column()
        grid.add_row(Text("RSS", style="bold"), Text(fmt_kb(st.vm_rss_kb), style="bold green"),
                     Text("peak RSS", style="bold"), fmt_kb(history.peak_rss_kb))
        grid.add_row(Text("swap", style="bold"), Text(fmt_kb(swap_kb), style="bold red" if swap_kb else ""),
                     Text("threads", style="bold"), str(st.threads or sample.process.num_threads))
        grid.add_row(Text("CPU", style="bold"), f"{sample.process.cpu_percent:.1f}% of a core",
                     Text("locked", style="bold"), fmt_kb(st.vm_lck_kb))
        grid.add_row(Text("minor faults", style="bold"), f"{fmt_rate(minflt[1] if minflt else None)}/s",
                     Text("major faults", style="bold"),
                     Text(f"{fmt_rate(majflt[1] if majflt else None)}/s",
                          style="bold red" if majflt and majflt[1] > 0 else ""))
        if sample.rollup is not None or history.last is not None:
            r = sample.rollup
            if r is not None:
                grid.add_row(Text("PSS", style="bold"), fmt_kb(r.pss_kb), Text("anon huge", style="bold"),
                             fmt_kb(r.anon_huge_kb))
        self.query_one("#overview-stats", Static).update(grid)
        span = len(history.rss)
        self.query_one("#rss-title", Static).update(
            Text.assemble(("RSS history", "bold"), f"  ({span} samples, one every {self.refresh_s:g}s)"))
        self.query_one(HistoryGraph).set_points(history.rss.window(self.size.width * 2 * self.refresh_s + 1))
        self.query_one("#leak-verdict", Static).update(leak_text(history))
        cost = sample.cost_ms
        parts = "  ".join(f"{k} {v:.1f}" for k, v in cost.items())
        self.query_one("#overview-cost", Static).update(
            Text(f"hftmem's own read cost this sample: {sum(cost.values()):.1f} ms ({parts})", style="dim"))
