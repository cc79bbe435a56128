"""Perf: each counter per second over the last interval, with a small history each.

Hardware events the machine refuses (no PMU in a VM, paranoid settings) say so in words.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from hftmem_tui.model.history import History
from hftmem_tui.sources.perf.stat import DEFAULT_EVENTS
from hftmem_tui.feeds.sample import Sample
from hftmem_tui.ui.graph import sparkline
from hftmem_tui.ui.textupdate import set_text
from hftmem_tui.ui.units import fmt_rate
from hftmem_tui.ui.safe import plain

NOT_SUPPORTED = "not supported here"
UNITS = {"task-clock": "task-clock ms"}  # perf counts task-clock in ms: 1000 per second = one busy core


class PerfCounters(Static):
    """One row per perf event: rate now, min/max over the history shown, and a sparkline."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("waiting for the first perf interval", id=id)
        self.note: str | None = None  # why there is no perf at all (from the sampler's notes)

    def show_sample(self, sample: Sample, history: History) -> None:
        if not history.perf and not history.perf_unsupported:
            self.update(plain(self.note or "no perf interval yet (perf stat reports once per refresh)", "dim"))
            return
        spark_w = max(8, self.size.width - 50)
        out = Text()
        out.append(f"{'event':<18}{'per second':>11}{'min':>8}{'max':>8}  history", style="bold")
        events = list(DEFAULT_EVENTS) + sorted(set(history.perf) - set(DEFAULT_EVENTS))
        for event in events:
            label = UNITS.get(event, event)
            if event in history.perf_unsupported:
                out.append(f"\n{label:<18}", style="bold")
                out.append(NOT_SUPPORTED, style="dim italic")
                continue
            series = history.perf.get(event)
            if series is None or not len(series):
                continue
            values = series.values()[-spark_w:]
            out.append(f"\n{label:<18}", style="bold")
            out.append(f"{fmt_rate(values[-1]):>11}")
            out.append(f"{fmt_rate(min(values)):>8}{fmt_rate(max(values)):>8}", style="dim")
            out.append("  ")
            out.append(sparkline(values, spark_w), style="cyan")
        p = sample.perf
        foot = f"last interval: {p.span_s:.1f} s of counting" if p is not None else "no new interval this refresh"
        out.append("\n" + foot, style="dim")
        set_text(self, out)
