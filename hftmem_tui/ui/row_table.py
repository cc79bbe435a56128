"""A table that draws only the rows on screen (Textual's line API), for tables of 100,000 rows.

A DataTable keeps one row object per item and re-lays itself out per added or removed row
(textual #5273): 7,665 mappings froze the screen for 18-72 s while a filter was typed. Here, as
in toolong's log_lines.py, the table holds an *index* (the row keys in display order) and asks
its owner for a row's cells only when that row is drawn. Filtering and sorting build a new
index elsewhere (a thread) and hand it over in one ``set_index`` call; new data for the same
rows is one ``refresh_rows`` call. Cursor, keys, header clicks and the look follow DataTable's.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from hftmem_tui.textsafe import visible

Cell = str | Text
PAD = 1  # blank cells either side of every column, as DataTable's cell_padding=1

@dataclass(frozen=True, slots=True)
class Column:
    """One column: ``key`` names it in messages, ``width`` is in cells (without the padding)."""

    key: str
    label: str
    width: int


class RowTable(ScrollView, can_focus=True):
    """Rows by key, drawn on demand: ``cells(key)`` gives a row's cells when it comes on screen.

    ``cells`` returns one ``str`` or ``Text`` per column; a ``str`` is plain text (never markup),
    a ``Text`` adds its style, and every cell goes through ``textsafe.visible`` (controls escaped).
    ``row_style(key)`` may give the whole row a style. Keys: up/down/pgup/pgdn/home/end move
    the cursor; the wheel scrolls; a click on a header posts ``HeaderSelected``.
    """

    DEFAULT_CSS = """
    RowTable {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .row-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .row-table--header { background-tint: $foreground 5%; }
        }
        & > .row-table--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .row-table--header { background: ansi_bright_blue; color: ansi_default; }
        & > .row-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """
    COMPONENT_CLASSES = {"row-table--header", "row-table--cursor"}
    SAME = object()  # set_index's default cursor_key: the key under the cursor now
    BINDINGS = [
        Binding("up", "cursor_up", "up", show=False),
        Binding("down", "cursor_down", "down", show=False),
        Binding("pageup", "cursor_page_up", "page up", show=False),
        Binding("pagedown", "cursor_page_down", "page down", show=False),
        Binding("home", "cursor_home", "first row", show=False),
        Binding("end", "cursor_end", "last row", show=False),
    ]

    class HeaderSelected(Message):
        """A column's header was clicked."""

        def __init__(self, table: RowTable, column_key: str) -> None:
            super().__init__()
            self.table = table
            self.column_key = column_key

        @property
        def control(self) -> RowTable:
            return self.table

    def __init__(self, columns: Sequence[Column], cells: Callable[[Hashable], Sequence[Cell]], *,
                 row_style: Callable[[Hashable], Style | None] | None = None,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = tuple(columns)
        self._cells = cells
        self._row_style = row_style
        self.keys: Sequence[Hashable] = ()
        self.cursor_row = 0
        self._width = sum(c.width + 2 * PAD for c in self.columns)
        self._lines: LRUCache[tuple, Strip] = LRUCache(1024)  # (row, cursor?, focus) -> strip; cleared on new data

    # ------------------------------------------------------------------ data
    @property
    def row_count(self) -> int:
        return len(self.keys)

    @property
    def cursor_key(self) -> Hashable | None:
        """The key of the row under the cursor (None when the table is empty)."""
        return self.keys[self.cursor_row] if 0 <= self.cursor_row < len(self.keys) else None

    def get_row_at(self, row: int) -> tuple[Cell, ...]:
        """The cells of the row at display position ``row``; IndexError past the end."""
        return tuple(self._cells(self.keys[row]))

    def set_index(self, keys: Sequence[Hashable], *, cursor_key: Hashable | None = SAME) -> None:
        """Show these rows, in this order, in one go. The cursor stays on ``cursor_key`` (default:
        the key under it now) when that is still shown, else on the same position."""
        keep = self.cursor_key if cursor_key is RowTable.SAME else cursor_key
        self.keys = keys
        old = row = self.cursor_row
        if keep is not None:
            try:
                row = keys.index(keep)
            except ValueError:
                pass
        self.cursor_row = max(0, min(row, len(keys) - 1))
        self.virtual_size = Size(self._width, len(keys) + 1)  # + the header line
        self.refresh_rows()
        if self.cursor_row != old:  # else the view stays where the user scrolled it (a new read)
            self._scroll_cursor_into_view()

    def refresh_rows(self) -> None:
        """The cells behind the keys changed (same rows): redraw what is on screen."""
        self._lines.clear()
        self.refresh()

    # ------------------------------------------------------------------ drawing
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if y == 0:
            strip = self._header()
        else:
            row = scroll_y + y - 1
            if row >= len(self.keys):
                return Strip.blank(width, self.rich_style)
            cursor = row == self.cursor_row
            cache_key = (row, cursor, self.has_focus)
            strip = self._lines.get(cache_key)
            if strip is None:
                strip = self._row(self.keys[row], cursor)
                self._lines[cache_key] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def _header(self) -> Strip:
        style = self.get_component_rich_style("row-table--header")
        return Strip([Segment("".join(self._fit(c.label, c.width) for c in self.columns), style)], self._width)

    def _row(self, key: Hashable, cursor: bool) -> Strip:
        base = self.rich_style
        if self._row_style is not None and (extra := self._row_style(key)) is not None:
            base = base + extra
        top = self.get_component_rich_style("row-table--cursor") if cursor else None  # over the cells' own, as DataTable
        segments = []
        for column, cell in zip(self.columns, self._cells(key), strict=False):
            style = base
            if isinstance(cell, Text):  # its own style on top (spans are not drawn: cells are one style)
                if cell.style:
                    style = base + (cell.style if isinstance(cell.style, Style) else Style.parse(cell.style))
                cell = cell.plain
            segments.append(Segment(self._fit(cell, column.width), style + top if top is not None else style))
        return Strip(segments, self._width)

    @staticmethod
    def _fit(text: str, width: int) -> str:
        """One padded cell: control characters escaped, cut with '…' or padded to ``width``."""
        text = visible(text)
        if cell_len(text) > width:
            cut = Text(text, end="")
            cut.truncate(width, overflow="ellipsis")
            text = cut.plain
        return " " * PAD + text + " " * (width - cell_len(text) + PAD)

    # ------------------------------------------------------------------ cursor
    @property
    def page_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def move_cursor(self, row: int) -> None:
        """Put the cursor on display position ``row`` (clamped) and scroll it into view."""
        row = max(0, min(row, len(self.keys) - 1))
        if row != self.cursor_row:
            self.cursor_row = row
            self._lines.clear()  # the old and the new cursor line look different now
            self.refresh()
        self._scroll_cursor_into_view()

    def _scroll_cursor_into_view(self) -> None:
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + self.page_rows:
            self.scroll_to(y=self.cursor_row - self.page_rows + 1, animate=False)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)

    def action_cursor_page_up(self) -> None:
        self.move_cursor(self.cursor_row - self.page_rows)

    def action_cursor_page_down(self) -> None:
        self.move_cursor(self.cursor_row + self.page_rows)

    def action_cursor_home(self) -> None:
        self.move_cursor(0)

    def action_cursor_end(self) -> None:
        self.move_cursor(len(self.keys) - 1)

    def on_click(self, event: events.Click) -> None:
        """A header click posts HeaderSelected; a row click moves the cursor there."""
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x = offset.x + int(self.scroll_x)
            for column in self.columns:
                x -= column.width + 2 * PAD
                if x < 0:
                    self.post_message(self.HeaderSelected(self, column.key))
                    return
            return
        self.move_cursor(int(self.scroll_y) + offset.y - 1)
