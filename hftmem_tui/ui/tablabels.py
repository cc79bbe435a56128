"""Tab labels that fit the tab bar: full names, short names, or digits with only the active pane named.

A clipped tab bar scrolls ("verview ... 7 Audi"): the digits that select the panes must always show.
"""

from __future__ import annotations

from textual.widgets import TabbedContent

FULL = {"overview": "Overview", "mappings": "Mappings", "perf": "Perf", "allocators": "Allocators",
        "latency": "Latency", "memory": "Memory", "audit": "Audit", "watch": "Watch", "allocs": "Allocs"}
SHORT = {"overview": "Over", "mappings": "Maps", "perf": "Perf", "allocators": "Pools", "latency": "Lat",
         "memory": "Mem", "audit": "Audit", "watch": "Watch", "allocs": "Calls"}
STYLES = ("full", "short", "digits")


def labels(ids: list[str], style: str, active: str) -> dict[str, str]:
    """pane id -> tab label in ``style`` (digits: only ``active`` keeps its name)."""
    out = {}
    for n, p in enumerate(ids, 1):
        if style == "digits":
            out[p] = f"{n} {FULL[p]}" if p == active else f"{n}"
        else:
            out[p] = f"{n} {(FULL if style == 'full' else SHORT)[p]}"
    return out


def fitting(ids: list[str], width: int, active: str) -> dict[str, str]:
    """The widest labels whose tabs fit ``width`` columns (a Tab pads its label by one cell each side)."""
    for style in STYLES:
        chosen = labels(ids, style, active)
        if sum(len(t) + 2 for t in chosen.values()) <= width:
            return chosen
    return chosen


def fit_labels(tabs: TabbedContent, pane_ids: list[str], width: int) -> None:
    """Relabel the built-in panes' tabs of ``tabs`` to fit ``width``; other tabs are left alone."""
    ids = [p for p in pane_ids if p in FULL]
    for p, label in fitting(ids, width, tabs.active).items():
        tab = tabs.get_tab(p)
        if str(tab.label) != label:
            tab.label = label
