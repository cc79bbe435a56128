"""Mappings: `pmap -x` live, plus growth since attach, Swap, Locked and AnonHugePages.

Rows are keyed by (start, path) and drawn by a RowTable (only the rows on screen), so 100,000
mappings cost what 40 do per frame. The order shown (sort, then filter) is an index built in
one pass over a new full smaps read or a new sort/filter: on the UI thread when the target has
few mappings, in one thread worker at a time when it has many (the UI keeps drawing; keys
typed meanwhile become one request, so the last key wins), then swapped in at once; the cursor stays on the same mapping. Sort by any column (``s``
next column, ``r`` reverse, or click a header), filter by name (``/``); growing rows are
highlighted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import bisect
import time
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from hftmem_tui.model.audit import fmt_kb
from hftmem_tui.model.history import History, MappingGrowth, MappingKey
from hftmem_tui.feeds.sample import Sample
from hftmem_tui.ui.row_table import Column, RowTable
from hftmem_tui.ui.textupdate import set_text
from hftmem_tui.textsafe import visible as visible_text

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
            Text(("▲ " if growing else "") + visible_text(name), style=style),
            Text(f"{g:+,}" if g else "0", style=style), _num(m.swap_kb), _num(m.locked_kb), _num(m.anon_huge_kb))



def is_growing(growth: MappingGrowth | None) -> bool:
    """History.growing for one growth record: grew at the last read, or holds more than at attach."""
    return growth is not None and (growth.since_last_kb > 0 or growth.since_attach_kb > 0)


# ---------------------------------------------------------------------- the index (no Textual)
# repr=False, eq=False: a repr or == of 100,000 mappings takes seconds; these are compared by identity.
@dataclass(frozen=True, slots=True, repr=False, eq=False)
class IndexRequest:
    """What to show: these mappings, filtered by ``needle`` (lower case), sorted by ``column``."""

    generation: int
    mappings: tuple[Mapping, ...]
    growth: dict[MappingKey, MappingGrowth]
    needle: str
    column: str
    reverse: bool


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class Prepared:
    """Per full smaps read, once: lower-case paths to filter on, and the totals.

    Rows are named by their position in ``mappings``: an index is a list of ints, so building
    one allocates no object per row (at 100k rows, garbage collection is the cost to avoid).
    """

    mappings: tuple[Mapping, ...]
    growth: dict[MappingKey, MappingGrowth]
    haystacks: list[str]
    total_kb: int
    rss_kb: int
    dirty_kb: int
    growing: int

    def position(self, key: MappingKey) -> int | None:
        """Where the mapping ``key`` is in ``mappings`` (smaps is in address order: a bisection)."""
        ms = self.mappings
        i = bisect.bisect_left(ms, key[0], key=_start)
        while i < len(ms) and ms[i].start == key[0]:
            if ms[i].path == key[1]:
                return i
            i += 1
        return next((j for j, m in enumerate(ms) if (m.start, m.path) == key), None)  # not in order: scan


def _start(m: Mapping) -> int:
    return m.start


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class MappingIndex:
    """The rows to show in order (positions in ``prepared.mappings``), and the data they are drawn from."""

    generation: int
    rows: list[int]
    prepared: Prepared
    order: tuple[str, bool, list[int]]  # (column, reverse, every position sorted): reused by the next filter
    needle: str = ""


def prepare(mappings: tuple[Mapping, ...], growth: dict[MappingKey, MappingGrowth]) -> Prepared:
    # display_name is in the path but for anonymous mappings: their name is the haystack.
    return Prepared(
        mappings, growth, [m.path.lower() or "[ anon ]" for m in mappings],
        sum(m.size_kb for m in mappings), sum(m.rss_kb for m in mappings), sum(m.dirty_kb for m in mappings),
        sum(1 for g in growth.values() if is_growing(g)))


def build_index(req: IndexRequest, last: MappingIndex | None = None) -> MappingIndex:
    """The rows to show for ``req``; reuses ``last``'s preparation and sort when they still apply.

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
    needle, hay = req.needle, prep.haystacks
    base = order
    if last is not None and last.order[2] is order and last.needle and last.needle in needle:
        base = last.rows  # typing on narrows what the last keystroke found
    rows = [i for i in base if needle in hay[i]] if needle else order
    return MappingIndex(req.generation, rows, prep, (req.column, req.reverse, order), needle)


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
        """A thread worker finished an index (None: it failed)."""

        def __init__(self, index: MappingIndex | None) -> None:
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
        self._in_flight = False  # a thread worker is building an index
        self._pending = False  # ... and another request came meanwhile: built when it is done

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
        """The last index asked for is not shown yet."""
        shown = self._index.generation if self._index is not None else 0
        return shown != self._generation

    @property
    def cursor_key(self) -> MappingKey | None:
        """(start, path) of the mapping under the cursor; None when no row is shown."""
        row = self.table.cursor_key
        if row is None or self._index is None:
            return None
        m = self._index.prepared.mappings[row]  # type: ignore[index]
        return (m.start, m.path)

    def select(self, path: str) -> bool:
        """Put the cursor on the first shown mapping of ``path`` (the tour's "[heap]"); False if none is shown."""
        if self._index is None:
            return False
        ms = self._index.prepared.mappings
        for position, i in enumerate(self._index.rows):
            if ms[i].path == path:
                self.table.move_cursor(position)
                return True
        return False

    def shown(self) -> list[MappingKey]:
        """(start, path) of every row shown, in order (for tests and tools: O(rows))."""
        if self._index is None:
            return []
        ms = self._index.prepared.mappings
        return [(ms[i].start, ms[i].path) for i in self._index.rows]

    def _row_cells(self, row: int) -> tuple:
        if self._index is None:
            return ()
        m = self._index.prepared.mappings[row]
        growth = self._index.prepared.growth.get((m.start, m.path))
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
        """Ask for the index of the current mappings, filter and sort; the newest request wins.

        Many rows: one thread worker at a time. Requests made while it runs (keys typed faster
        than an index is built) become one, built from the state when it finishes: no timer
        delays the first key, and the last key's result is always the one left on screen.
        """
        self._generation += 1
        if len(self._mappings) <= INLINE_ROWS:
            self._show(build_index(self._request_now(), self._index))
        elif self._in_flight:
            self._pending = True
        else:
            self._in_flight = True
            self._build_in_thread(self._request_now(), self._index)

    def _request_now(self) -> IndexRequest:
        return IndexRequest(self._generation, self._mappings, self._growth, self.filter_text.lower(),
                            self.sort_column, self.sort_reverse)

    # A description of our own: Textual's default is the repr of the arguments (100k mappings: 2.4 s).
    @work(thread=True, exclusive=True, group="mappings-filter", exit_on_error=False, description="mappings index")
    def _build_in_thread(self, req: IndexRequest, last: MappingIndex | None) -> None:
        index = None
        try:
            index = build_index(req, last)
        finally:  # even a failed build (a bug: the worker logs it) must not leave the pane waiting
            if not get_current_worker().is_cancelled:
                self.post_message(self.IndexBuilt(index))

    def on_mapping_table_index_built(self, message: MappingTable.IndexBuilt) -> None:
        message.stop()
        if message.index is not None:
            self._show(message.index)  # maybe one key behind: shown now, the newest follows
        self._in_flight = False
        if self._pending:
            self._pending = False
            self._in_flight = True
            self._build_in_thread(self._request_now(), self._index)

    def _show(self, index: MappingIndex) -> None:
        table = self.table
        if self._index is not None and index.prepared is self._index.prepared:
            cursor = table.SAME  # same rows by position: the table finds its cursor's row itself
        else:  # a new read: rows are new positions; find the cursor's mapping in it
            key = self.cursor_key
            cursor = index.prepared.position(key) if key is not None else None
        self._index = index
        table.set_index(index.rows, cursor_key=cursor)
        prep = index.prepared
        when = time.strftime("%H:%M:%S", time.localtime(self._mappings_time or 0))
        filt = f"  filter '{visible_text(self.filter_text)}': {len(index.rows)} shown" if self.filter_text else ""
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
        self._request()
