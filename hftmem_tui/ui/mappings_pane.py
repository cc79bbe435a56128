"""Mappings: `pmap -x` live, plus growth since attach, Swap, Locked and AnonHugePages.

Rows are keyed by (start, path) and drawn by a RowTable (only the rows on screen), so 100,000
mappings cost what 40 do per frame. The order shown (sort, then filter) is an index built in
one pass over a new full smaps read or a new sort/filter: on the UI thread when the target has
few mappings, in a thread worker when it has many (the UI keeps drawing, the last request
wins), then swapped in at once; the cursor stays on the same mapping. Sort by any column (``s``
next column, ``r`` reverse, or click a header), filter by name (``/``); growing rows are
highlighted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import time
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from hftmem_tui.model.audit import fmt_kb
from hftmem_tui.model.history import History, MappingGrowth, MappingKey, mapping_key
from hftmem_tui.feeds.sample import Sample
from hftmem_tui.ui.row_table import Column, RowTable, printable
from hftmem_tui.ui.textupdate import set_text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hftmem_tui.sources.procfs import Mapping

# (key, label, width): pmap -x's columns first, then ours.
COLUMNS = (("address", "Address", 12), ("kbytes", "Kbytes", 9), ("rss", "RSS", 9), ("dirty", "Dirty", 9),
           ("mode", "Mode", 5), ("mapping", "Mapping", 26), ("growth", "Growth", 9), ("swap", "Swap", 7),
           ("locked", "Locked", 7), ("anonhuge", "AnonHuge", 8))
COLUMN_KEYS = tuple(c[0] for c in COLUMNS)
GROWING_STYLE = "bold yellow"
INLINE_ROWS = 5000  # up to here an index takes a few ms: built at once, a thread would only add a frame
DEBOUNCE_S = 0.05  # filter keystrokes closer than this are one request (a paste, key repeat)


def display_name(m: Mapping) -> str:
    """pmap's Mapping column, but [heap]/[stack]/[vdso] by their own names (pmap says '[ anon ]')."""
    if m.path.startswith("["):
        return m.path
    return m.name


def sort_values(mappings: Sequence[Mapping], growth: dict[MappingKey, MappingGrowth], column: str) -> list:
    """The sort key of every mapping for ``column`` (one list pass: no per-row dict)."""
    if column == "growth":
        return [g.since_attach_kb if (g := growth.get((m.start, m.path))) else 0 for m in mappings]
    if column == "mapping":
        return [display_name(m).lower() for m in mappings]
    if column == "mode":
        return [m.mode for m in mappings]
    if column == "dirty":
        return [m.shared_dirty_kb + m.private_dirty_kb for m in mappings]
    field_name = {"address": "start", "kbytes": "size_kb", "rss": "rss_kb", "swap": "swap_kb",
                  "locked": "locked_kb", "anonhuge": "anon_huge_kb"}[column]
    return [getattr(m, field_name) for m in mappings]


def _num(kb: int) -> str:
    return f"{kb:,}"


def row_cells(m: Mapping, growth: MappingGrowth | None, growing: bool) -> tuple:
    """The cells of one row; growing rows carry a style on the name and growth cells."""
    g = growth.since_attach_kb if growth else 0
    style = GROWING_STYLE if growing else ""
    name = display_name(m)
    return (f"{m.start:012x}", _num(m.size_kb), _num(m.rss_kb), _num(m.dirty_kb), m.mode,
            Text(("▲ " if growing else "") + name, style=style),
            Text(f"{g:+,}" if g else "0", style=style), _num(m.swap_kb), _num(m.locked_kb), _num(m.anon_huge_kb))



def is_growing(growth: MappingGrowth | None) -> bool:
    """History.growing for one growth record: grew at the last read, or holds more than at attach."""
    return growth is not None and (growth.since_last_kb > 0 or growth.since_attach_kb > 0)


# ---------------------------------------------------------------------- the index (no Textual)
@dataclass(frozen=True, slots=True)
class IndexRequest:
    """What to show: these mappings, filtered by ``needle`` (lower case), sorted by ``column``."""

    generation: int
    mappings: tuple[Mapping, ...]
    growth: dict[MappingKey, MappingGrowth]
    needle: str
    column: str
    reverse: bool


@dataclass(frozen=True, slots=True)
class Prepared:
    """Per full smaps read, once: keys, lower-case names to filter on, totals."""

    mappings: tuple[Mapping, ...]
    growth: dict[MappingKey, MappingGrowth]
    keys: list[MappingKey]
    by_key: dict[MappingKey, Mapping]
    haystacks: list[str]
    total_kb: int
    rss_kb: int
    dirty_kb: int
    growing: int


@dataclass(frozen=True, slots=True)
class MappingIndex:
    """The rows to show in order (keys), and the data they are drawn from."""

    generation: int
    keys: list[MappingKey]
    prepared: Prepared
    order: tuple[str, bool, list[int]]  # (column, reverse, positions in prepared order): reused by the next filter


def prepare(mappings: tuple[Mapping, ...], growth: dict[MappingKey, MappingGrowth]) -> Prepared:
    keys = [(m.start, m.path) for m in mappings]
    return Prepared(
        mappings, growth, keys, dict(zip(keys, mappings, strict=True)),
        [f"{display_name(m)}\0{m.path}".lower() for m in mappings],
        sum(m.size_kb for m in mappings), sum(m.rss_kb for m in mappings), sum(m.dirty_kb for m in mappings),
        sum(1 for g in growth.values() if is_growing(g)))


def build_index(req: IndexRequest, last: MappingIndex | None = None) -> MappingIndex:
    """The keys to show for ``req``; reuses ``last``'s preparation and sort when they still apply.

    Sorting is stable over smaps order (address order), so equal values keep their addresses'
    order. Pure; raises nothing for well-formed mappings.
    """
    prep = last.prepared if last is not None and last.prepared.mappings is req.mappings \
        and last.prepared.growth is req.growth else prepare(req.mappings, req.growth)
    if last is not None and last.prepared is prep and last.order[:2] == (req.column, req.reverse):
        order = last.order[2]
    else:
        values = sort_values(prep.mappings, prep.growth, req.column)
        order = sorted(range(len(values)), key=values.__getitem__, reverse=req.reverse)
    keys, hay = prep.keys, prep.haystacks
    needle = req.needle
    shown = [keys[i] for i in order if needle in hay[i]] if needle else [keys[i] for i in order]
    return MappingIndex(req.generation, shown, prep, (req.column, req.reverse, order))


# ---------------------------------------------------------------------- the pane
class MappingTable(Vertical):
    """Every mapping of the target, redrawn at each full smaps read."""

    BINDINGS = [
        Binding("slash", "filter", "filter"),
        Binding("s", "next_sort", "sort"),
        Binding("r", "reverse", "reverse"),
        Binding("escape", "clear_filter", "clear filter", show=False),
    ]

    class IndexBuilt(Message):
        """A thread worker finished an index (a stale one is dropped by its generation)."""

        def __init__(self, index: MappingIndex) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.sort_column = "rss"
        self.sort_reverse = True
        self.filter_text = ""
        self._mappings: tuple[Mapping, ...] = ()
        self._growth: dict[MappingKey, MappingGrowth] = {}
        self._mappings_time: float | None = None
        self._index: MappingIndex | None = None
        self._generation = 0
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter by name (Enter to apply, Esc to clear)", id="mappings-filter")
        yield Static("waiting for the first full smaps read", id="mappings-summary")
        yield RowTable([Column(*c) for c in COLUMNS], self._row_cells, id="mappings-table")

    def on_mount(self) -> None:
        self.query_one("#mappings-filter", Input).display = False

    @property
    def table(self) -> RowTable:
        return self.query_one("#mappings-table", RowTable)

    @property
    def building(self) -> bool:
        """An index is asked for and not shown yet (a thread worker or a debounced keystroke)."""
        shown = self._index.generation if self._index is not None else 0
        return self._debounce is not None or shown != self._generation

    def _row_cells(self, key: MappingKey) -> tuple:
        prep = self._index.prepared if self._index is not None else None
        m = prep.by_key.get(key) if prep is not None else None
        if m is None:
            return ()
        growth = prep.growth.get(key)
        return row_cells(m, growth, is_growing(growth))

    # ------------------------------------------------------------------ data
    def show_sample(self, sample: Sample, history: History) -> None:
        if history.mappings_time is None or history.mappings_time == self._mappings_time:
            return  # no new full smaps read since the last update
        self._mappings_time = history.mappings_time
        self._mappings = history.mappings
        self._growth = history.growth
        self._request()

    def _request(self) -> None:
        """Ask for the index of the current mappings, filter and sort; the newest request wins."""
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        self._generation += 1
        req = IndexRequest(self._generation, self._mappings, self._growth, self.filter_text.lower(),
                           self.sort_column, self.sort_reverse)
        if len(req.mappings) <= INLINE_ROWS:
            self._show(build_index(req, self._index))
        else:
            self._build_in_thread(req, self._index)

    @work(thread=True, exclusive=True, group="mappings-filter", exit_on_error=False)
    def _build_in_thread(self, req: IndexRequest, last: MappingIndex | None) -> None:
        index = build_index(req, last)
        if not get_current_worker().is_cancelled:
            self.post_message(self.IndexBuilt(index))

    def on_mapping_table_index_built(self, message: MappingTable.IndexBuilt) -> None:
        message.stop()
        if message.index.generation == self._generation:
            self._show(message.index)

    def _show(self, index: MappingIndex) -> None:
        self._index = index
        self.table.set_index(index.keys)
        prep = index.prepared
        when = time.strftime("%H:%M:%S", time.localtime(self._mappings_time or 0))
        filt = f"  filter '{printable(self.filter_text)}': {len(index.keys)} shown" if self.filter_text else ""
        arrow = "↓" if self.sort_reverse else "↑"
        set_text(self.query_one("#mappings-summary", Static), Text.assemble(
            (f"{len(prep.mappings)} mappings", "bold"),
            f"  total {fmt_kb(prep.total_kb)}  RSS {fmt_kb(prep.rss_kb)}  dirty {fmt_kb(prep.dirty_kb)}",
            ("  ", ""), (f"{prep.growing} growing", GROWING_STYLE if prep.growing else "dim"),
            f"  sort {self.sort_column}{arrow}{filt}  read {when}"))

    # ------------------------------------------------------------------ actions
    def action_next_sort(self) -> None:
        i = COLUMN_KEYS.index(self.sort_column)
        self.sort_by(COLUMN_KEYS[(i + 1) % len(COLUMN_KEYS)])

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._request()

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        """Sort by ``column`` (a COLUMN_KEYS name; ValueError otherwise)."""
        if column not in COLUMN_KEYS:
            raise ValueError(f"no column {column!r}")
        self.sort_column = column
        if reverse is not None:
            self.sort_reverse = reverse
        else:  # sizes read best largest first, names and addresses in order
            self.sort_reverse = column not in ("address", "mapping", "mode")
        self._request()

    def on_row_table_header_selected(self, event: RowTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key == self.sort_column:
            self.action_reverse()
        else:
            self.sort_by(event.column_key)

    def action_filter(self) -> None:
        box = self.query_one("#mappings-filter", Input)
        box.display = True
        box.focus()

    def set_filter(self, text: str) -> None:
        """Show only mappings whose name or path holds ``text`` (any case); "" shows all."""
        self.filter_text = text.strip()
        box = self.query_one("#mappings-filter", Input)
        box.value = self.filter_text
        box.display = bool(self.filter_text)
        self._request()

    def action_clear_filter(self) -> None:
        self.set_filter("")
        self.table.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.set_filter(event.value)
        self.table.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if event.value.strip() == self.filter_text:
            return
        self.filter_text = event.value.strip()
        if len(self._mappings) <= INLINE_ROWS:
            self._request()
        else:  # many rows: one index per burst of keys, the last one's
            if self._debounce is not None:
                self._debounce.stop()
            self._debounce = self.set_timer(DEBOUNCE_S, self._request)
