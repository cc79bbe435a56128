"""Overview: the numbers top, `pmap` and `perf stat` would give, an RSS history and the leak verdict."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from hftmem_tui.model.audit import fmt_kb
from hftmem_tui.model.deltas import summarize_by_kind
from hftmem_tui.model.history import History, mapping_key
from hftmem_tui.feeds.sample import Sample
from hftmem_tui.ui.graph import HistoryGraph
from hftmem_tui.ui.textupdate import set_text
from hftmem_tui.ui.units import fmt_rate
from hftmem_tui.textsafe import visible

VERDICT_STYLE = {"growing": "bold white on red", "shrinking": "bold cyan", "flat": "bold green",
                 "insufficient data": "dim"}


def fmt_bytes(b: float) -> str:
    return fmt_kb(b / 1024)


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


def kinds_text(history: History, top: int = 5) -> Text:
    """RSS per kind of mapping (heap, anon, file, stack...) and the mappings that grew most since attach."""
    t = Text("RSS by kind: ", style="bold")
    t.append("  ".join(f"{k.kind} {fmt_kb(k.rss_kb)} ({k.count})" for k in summarize_by_kind(history.mappings).values()))
    grown = sorted(((g.since_attach_kb, key) for key, g in history.growth.items() if g.since_attach_kb > 0), reverse=True)
    t.append("\ngrew since attach: ", style="bold")
    if not grown:
        t.append("nothing", style="dim")
    by_key = {mapping_key(m): m for m in history.mappings}
    for kb, key in grown[:top]:
        m = by_key.get(key)
        name = (m.path if m is not None and m.path.startswith("[") else m.name if m is not None else key[1]) or "[ anon ]"
        t.append(f"{visible(name)} ", style="bold yellow")
        t.append(f"+{fmt_kb(kb)}  ")
    return t


class OverviewPane(Vertical):
    """RSS, peak, swap, threads, CPU, fault rates; an RSS graph with a time axis; the leak verdict."""

    def __init__(self, *, graph_style: str = "braille", refresh_s: float = 1.0, id: str | None = None) -> None:
        super().__init__(id=id)
        self.graph_style = graph_style
        self.refresh_s = refresh_s
        self._rollup: tuple[str, str] | None = None
        self._kinds_time: float | None = None

    def compose(self) -> ComposeResult:
        yield Static("waiting for the first sample", id="overview-stats")
        yield Static("RSS history", id="rss-title", classes="graph-title")
        yield HistoryGraph(style=self.graph_style, step=self.refresh_s, fmt=fmt_bytes, id="rss-graph")
        yield Static("", id="leak-verdict")
        yield Static("", id="overview-cost")
        yield Static("", id="overview-kinds")

    def set_graph_style(self, style: str) -> None:
        self.graph_style = style
        self.query_one(HistoryGraph).set_style(style)

    def show_sample(self, sample: Sample, history: History) -> None:
        st = sample.status
        minflt = history.minflt.last()
        majflt = history.majflt.last()
        swap_kb = st.vm_swap_kb
        rows: list[tuple[str, Text | str, str, Text | str]] = [
            ("RSS", Text(fmt_kb(st.vm_rss_kb), style="bold green"), "peak RSS", fmt_kb(history.peak_rss_kb)),
            ("swap", Text(fmt_kb(swap_kb), style="bold red" if swap_kb else ""),
             "threads", str(st.threads or sample.process.num_threads)),
            ("CPU", f"{sample.process.cpu_percent:.1f}% of a core", "locked", fmt_kb(st.vm_lck_kb)),
            ("minor faults", f"{fmt_rate(minflt[1] if minflt else None)}/s", "major faults",
             Text(f"{fmt_rate(majflt[1] if majflt else None)}/s", style="bold red" if majflt and majflt[1] > 0 else "")),
        ]
        r = sample.rollup
        if r is not None:
            self._rollup = (fmt_kb(r.pss_kb), fmt_kb(r.anon_huge_kb))
        if self._rollup is not None:  # smaps_rollup may skip a sample (its duty cycle): keep the last
            rows.append(("PSS", self._rollup[0], "anon huge", self._rollup[1]))
        stats = Text()
        for i, (k1, v1, k2, v2) in enumerate(rows):
            if i:
                stats.append("\n")
            stats.append(f"{k1:<14}", style="bold")
            v1 = v1 if isinstance(v1, Text) else Text(v1)
            stats.append_text(v1)
            stats.append(" " * max(2, 20 - len(v1.plain)))
            stats.append(f"{k2:<14}", style="bold")
            stats.append_text(v2 if isinstance(v2, Text) else Text(v2))
        set_text(self.query_one("#overview-stats", Static), stats)
        span = len(history.rss)
        set_text(self.query_one("#rss-title", Static),
            Text.assemble(("RSS history", "bold"), f"  ({span} samples, one every {self.refresh_s:g}s)"))
        self.query_one(HistoryGraph).set_points(history.rss.window(self.size.width * 2 * self.refresh_s + 1))
        set_text(self.query_one("#leak-verdict", Static), leak_text(history))
        if history.mappings_time is not None and history.mappings_time != self._kinds_time:
            self._kinds_time = history.mappings_time  # full smaps read: every few samples only
            set_text(self.query_one("#overview-kinds", Static), kinds_text(history))
        cost = sample.cost_ms
        parts = "  ".join(f"{k} {v:.1f}" for k, v in cost.items())
        set_text(self.query_one("#overview-cost", Static),
            Text(f"hftmem's own read cost this sample: {sum(cost.values()):.1f} ms ({parts})", style="dim"))
