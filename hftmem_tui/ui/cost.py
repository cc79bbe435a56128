"""One line, always on screen in a live session: what observing costs (issue 9 item 5).

hftmem's own CPU (all its threads), the milliseconds per second it spends reading /proc
(status, smaps_rollup, smaps, the engine's stats block: Sample.cost_ms), and the perf
events it holds on the engine (watchpoints, uprobes) with their hit rates and engine cost.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.css.query import NoMatches
from textual.widgets import Static

from hftmem_tui.model.observecost import ArmedEvents, ObserveCost


class InspectorCost(Static):
    """The inspector's cost line; fed the samples by the app, refreshed every second."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.cost = ObserveCost()
        self.line = self.cost.line()
        self.perf_stat_events = 0  # counters of the Perf pane's `perf stat` (counting only: no interrupts)

    def on_mount(self) -> None:
        self.cost.add_cpu(time.monotonic(), time.process_time())
        self.set_interval(1.0, self.redraw)

    def add_sample(self, sample) -> None:
        self.cost.add_sample(time.monotonic(), sample.cost_ms)
        if sample.perf is not None:
            self.perf_stat_events = len(sample.perf.values)

    def armed(self) -> tuple[ArmedEvents, ...]:
        out: list[ArmedEvents] = []
        if self.perf_stat_events:
            out.append(ArmedEvents("perf stat counters", self.perf_stat_events, 0.0, None))
        for pane_id in ("#watch-view", "#allocs-view"):
            try:
                pane = self.app.query_one(pane_id)
            except NoMatches:
                continue
            if hasattr(pane, "armed_events"):
                out.extend(pane.armed_events())
        return tuple(out)

    def redraw(self) -> None:
        self.cost.add_cpu(time.monotonic(), time.process_time())
        self.line = self.cost.line(self.armed())
        self.update(Text(str(self.line), style="yellow" if self.line.hit_rate_hz > 0 else "dim"))
