"""Mappings: `pmap -x` live, plus growth since attach, Swap, Locked and AnonHugePages.

Rows are keyed by (start, path) and updated cell by cell (no clear-and-refill), so the cursor
and the scroll position stay where the user left them. Sort by any column (``s`` next column,
``r`` reverse, or click a header), filter by name (``/``), growing rows are highlighted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from hftmem_tui.model.audit import fmt_kb
from hftmem_tui.model.history import History, MappingGrowth, mapping_key
from hftmem_tui.feeds.sample import Sample
from hftmem_tui.ui.textupdate import set_text
from hftmem_tui.textsafe import visible as visible_text

if TYPE_CHECKING:
    from hftmem_tui.sources.procfs import Mapping

# (key, label, width): pmap -x's columns first, then ours.
COLUMNS = (("address", "Address", 12), ("kbytes", "Kbytes", 9), ("rss", "RSS", 9), ("dirty", "Dirty", 9),
           ("mode", "Mode", 5), ("mapping", "Mapping", 26), ("growth", "Growth", 9), ("swap", "Swap", 7),
           ("locked", "Locked", 7), ("anonhuge", "AnonHuge", 8))
COLUMN_KEYS = tuple(c[0] for c in COLUMNS)
GROWING_STYLE = "bold yellow"


def display_name(m: Mapping) -> str:
    """pmap's Mapping column, but [heap]/[stack]/[vdso] by their own names (pmap says '[ anon ]')."""
    if m.path.startswith("["):
        return m.path
    return m.name


def sort_value(m: Mapping, growth: MappingGrowth | None, column: str):
    return {
        "address": m.start, "kbytes": m.size_kb, "rss": m.rss_kb, "dirty": m.dirty_kb, "mode": m.mode,
        "mapping": display_name(m).lower(), "growth": growth.since_attach_kb if growth else 0,
        "swap": m.swap_kb, "locked": m.locked_kb, "anonhuge": m.anon_huge_kb,
    }[column]


def _num(kb: int) -> str:
    return f"{kb:,}"


def row_cells(m: Mapping, growth: MappingGrowth | None, growing: bool) -> tuple:
    """The cells of one row; growing rows carry a style on the name and growth cells."""
    g = growth.since_attach_kb if growth else 0
    style = GROWING_STYLE if growing else ""
    name = display_name(m)
    return (f"{m.start:012x}", _num(m.size_kb), _num(m.rss_kb), _num(m.dirty_kb), m.mode,
            Text(("▲ " if growing else "") + visible_text(name), style=style),
            Text(f"{g:+,}" if g else "0", style=style), _num(m.swap_kb), _num(m.locked_kb), _num(m.anon_huge_kb))


class MappingTable(Vertical):
    """Every mapping of the target, updated in place at each full smaps read."""

    BINDINGS = [
        Binding("slash", "filter", "filter"),
        Binding("s", "next_sort", "sort"),
        Binding("r", "reverse", "reverse"),
        Binding("escape", "clear_filter", "clear filter", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.sort_column = "rss"
        self.sort_reverse = True
        self.filter_text = ""
        self._cells: dict[str, tuple] = {}  # row key -> cells shown (to update only what changed)
        self._sort_values: dict[str, object] = {}  # address cell -> sort value
        self._mappings: tuple[Mapping, ...] = ()
        self._history: History | None = None
        self._shown_time: float | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter by name (Enter to apply, Esc to clear)", id="mappings-filter")
        yield Static("waiting for the first full smaps read", id="mappings-summary")
        table: DataTable = DataTable(id="mappings-table", cursor_type="row", zebra_stripes=False)
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        yield table

    def on_mount(self) -> None:
        self.query_one("#mappings-filter", Input).display = False

    @property
    def table(self) -> DataTable:
        return self.query_one("#mappings-table", DataTable)

    # ------------------------------------------------------------------ data
    def show_sample(self, sample: Sample, history: History) -> None:
        self._history = history
        if history.mappings_time is None or history.mappings_time == self._shown_time:
            return  # no new full smaps read since the last update
        self._shown_time = history.mappings_time
        self._mappings = history.mappings
        self._apply()

    def _apply(self) -> None:
        history = self._history
        if history is None:
            return
        table = self.table
        needle = self.filter_text.lower()
        visible = [m for m in self._mappings
                   if not needle or needle in display_name(m).lower() or needle in m.path.lower()]
        keys = {}
        for m in visible:
            keys[f"{m.start:x}:{m.path}"] = m
        cursor_key = self._cursor_key()
        for key in [k for k in self._cells if k not in keys]:
            table.remove_row(key)
            del self._cells[key]
        resort = False
        for key, m in keys.items():
            mk = mapping_key(m)
            growth = history.growth.get(mk)
            cells = row_cells(m, growth, history.growing(mk))
            old = self._cells.get(key)
            if old is None:
                table.add_row(*cells, key=key)
                resort = True
            elif old != cells:
                for i, (a, b) in enumerate(zip(old, cells, strict=True)):
                    if a != b:
                        table.update_cell(key, COLUMN_KEYS[i], b)
                        resort = resort or COLUMN_KEYS[i] == self.sort_column
            self._cells[key] = cells
            self._sort_values[cells[0]] = sort_value(m, growth, self.sort_column)
        if resort:
            self._sort(cursor_key)
        total = sum(m.size_kb for m in self._mappings)
        rss = sum(m.rss_kb for m in self._mappings)
        dirty = sum(m.dirty_kb for m in self._mappings)
        grew = sum(1 for m in self._mappings if history.growing(mapping_key(m)))
        when = time.strftime("%H:%M:%S", time.localtime(history.mappings_time or 0))
        filt = f"  filter '{visible_text(self.filter_text)}': {len(visible)} shown" if self.filter_text else ""
        arrow = "↓" if self.sort_reverse else "↑"
        set_text(self.query_one("#mappings-summary", Static), Text.assemble(
            (f"{len(self._mappings)} mappings", "bold"), f"  total {fmt_kb(total)}  RSS {fmt_kb(rss)}  dirty {fmt_kb(dirty)}",
            ("  ", ""), (f"{grew} growing", GROWING_STYLE if grew else "dim"),
            f"  sort {self.sort_column}{arrow}{filt}  read {when}"))

    def _cursor_key(self) -> str | None:
        table = self.table
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - no valid cursor yet
            return None

    def _sort(self, cursor_key: str | None) -> None:
        table = self.table
        values = self._sort_values
        table.sort("address", key=lambda addr: values.get(addr, 0), reverse=self.sort_reverse)
        if cursor_key is not None and cursor_key in self._cells:
            table.move_cursor(row=table.get_row_index(cursor_key), scroll=False)

    def _resort_all(self) -> None:
        history = self._history
        if history is None:
            return
        self._sort_values = {f"{m.start:012x}": sort_value(m, history.growth.get(mapping_key(m)), self.sort_column)
                             for m in self._mappings}
        self._sort(self._cursor_key())
        self._shown_time = None
        self._apply()

    # ------------------------------------------------------------------ actions
    def action_next_sort(self) -> None:
        i = COLUMN_KEYS.index(self.sort_column)
        self.sort_by(COLUMN_KEYS[(i + 1) % len(COLUMN_KEYS)])

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._resort_all()

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if column not in COLUMN_KEYS:
            raise ValueError(f"no column {column!r}")
        self.sort_column = column
        if reverse is not None:
            self.sort_reverse = reverse
        else:  # sizes read best largest first, names and addresses in order
            self.sort_reverse = column not in ("address", "mapping", "mode")
        self._resort_all()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        column = event.column_key.value or "rss"
        if column == self.sort_column:
            self.action_reverse()
        else:
            self.sort_by(column)

    def action_filter(self) -> None:
        box = self.query_one("#mappings-filter", Input)
        box.display = True
        box.focus()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        box = self.query_one("#mappings-filter", Input)
        box.value = self.filter_text
        box.display = bool(self.filter_text)
        self._apply()

    def action_clear_filter(self) -> None:
        self.set_filter("")
        self.table.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.set_filter(event.value)
        self.table.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.value.strip() != self.filter_text:
            self.filter_text = event.value.strip()
            self._apply()
