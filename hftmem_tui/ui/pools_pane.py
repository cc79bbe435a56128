"""Allocators: live gauges for every object pool, arena and ring the engine has (or a TOML file describes).

Counters the engine's type lacks are None in the view and show as "—".
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from hftmem_tui.model.allocators import ArenaView, PoolView, RingView
from hftmem_tui.model.history import History
from hftmem_tui.feeds.sample import Sample
from hftmem_tui.ui.textupdate import set_text
from hftmem_tui.textsafe import visible
from hftmem_tui.ui.safe import plain

DASH = "—"


def gauge(used: int, capacity: int, width: int) -> Text:
    """[██████░░░░] 62%: green below 70%, yellow below 90%, red above (words carry it too)."""
    frac = used / capacity if capacity > 0 else 0.0
    frac = max(0.0, min(1.0, frac))
    full = int(round(frac * width))
    style = "green" if frac < 0.7 else "yellow" if frac < 0.9 else "bold red"
    t = Text("[")
    t.append("█" * full, style=style)
    t.append("░" * (width - full), style="dim")
    t.append(f"] {frac:4.0%}")
    return t


def _n(v: int | None) -> str:
    return DASH if v is None else f"{v:,}"


def _alarm(v: int | None) -> Text:
    return Text(_n(v), style="bold red" if v else "")


def view_rows(view: PoolView | ArenaView | RingView, width: int) -> tuple[str, str, Text, str, str]:
    """(name, kind, gauge, numbers, counters) for one allocator."""
    if isinstance(view, PoolView):
        return (view.symbol, "pool", gauge(view.live, view.capacity, width), f"{view.live:,}/{view.capacity:,} live",
                f"hw {_n(view.high_water)}  rejects {_n(view.rejects)}  double frees {_n(view.double_frees)}"
                f"  poison {_n(view.poison_violations)}")
    if isinstance(view, ArenaView):
        return (view.symbol, "arena", gauge(view.used, view.capacity, width), f"{view.used:,}/{view.capacity:,} B",
                f"hw {_n(view.high_water)}  resets {_n(view.resets)}  failed {_n(view.failed)}")
    return (view.symbol, "ring", gauge(view.depth, view.capacity, width), f"{view.depth:,}/{view.capacity:,} deep",
            f"drops {_n(view.push_failures)}")


class AllocatorGauges(Static):
    """One gauge per pool / arena / ring, with its counters."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("waiting for the first sample", id=id)
        self.note: str | None = None

    def show_sample(self, sample: Sample, history: History) -> None:
        views = sample.allocators
        if not views:
            self.update(plain(self.note or "no allocators: not the demo engine, and no --allocators FILE given",
                              "dim"))
            return
        width = self.size.width or 80
        name_w = min(24, max(len(visible(v.symbol)) for v in views))
        bar_w = max(10, min(40, width - name_w - 6 - 8 - 22 - 4))
        lines = Text()
        for v in views:
            name, kind, bar, now, counters = view_rows(v, bar_w)
            lines.append(visible(name)[:name_w].ljust(name_w) + " ", style="bold")
            lines.append(kind.ljust(6))
            lines.append_text(bar)
            lines.append("  " + now + "\n")
            lines.append(" " * (name_w + 7) + counters + "\n", style="dim")
        e = sample.engine
        if e is not None:
            alarms = [(label, value) for label, value in (
                ("pool rejects", e.pool_rejects), ("double frees", e.pool_double_frees),
                ("poison violations", e.pool_poison_violations), ("arena failed", e.arena_failed),
                ("ring drops", e.ring_drops), ("hot-path allocs", e.hot_path_allocs),
                ("leaked bytes", e.leaked_bytes), ("corrupted orders", e.corrupted_orders)) if value]
            line = Text("engine counters: ", style="bold")
            if alarms:
                for label, value in alarms:
                    line.append(f"{label} {value:,}  ", style="bold red")
            else:
                line.append("no rejects, double frees, drops or leaks", style="green")
            lines.append("\n")
            lines.append_text(line)
            lines.append("\n")
            lines.append(f"{e.msgs_per_sec:,} msgs/s  ring {e.ring_ns_per_msg} ns/msg", style="dim")
        set_text(self, lines)
