"""Hex memory viewer: gdb's ``x/`` on a running engine, without stopping it.

Type an address (``0x7ffd...``), a global (``hftmem_engine_stats``) or a member
(``hftmem_last_order.price``, ``g.arr[3].x``) and press Enter. Anything else (``x = 1``,
calls, ``$reg``) is refused by the symbol guard before gdb ever sees it. Reads go through the
MemoryReader the App hands the panel (services.py: process_vm_readv) in a thread worker; the
engine keeps running.

The app calls ``refresh_memory()`` on every refresh tick: bytes that changed since the
previous read are highlighted, the demo pool's 0xDD poison (freed slots) is styled, and
when a read fails (unmapped, target gone) the last data stays on screen with a notice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from hftmem_tui.errors import NoSuchProcess, SourceError, UnmappedAddress, ZombieProcess
from hftmem_tui.textsafe import visible
from hftmem_tui.ui.safe import notify_plain, plain

if TYPE_CHECKING:
    from hftmem_tui.services import MemoryReader

POISON = 0xDD  # hftmem::kPoisonByte: every byte of a free pool slot after its next pointer
# format -> (unit bytes, bytes per row): gdb's x/8xb, x/4xw, x/2xg rows; ascii shows text only.
VIEW_FORMATS: dict[str, tuple[int, int]] = {"xb": (1, 8), "xw": (4, 16), "xg": (8, 16), "ascii": (1, 32)}
# ANSI base colours: they exist in a 16-colour terminal, and the legend names each one.
CHANGED_STYLE = "bold black on yellow"
POISON_STYLE = "magenta"
CURSOR_STYLE = "reverse"


def parse_address(text: str) -> int | None:
    """0x-prefixed hex or plain decimal (as gdb's x/ takes them); None for anything else."""
    t = text.strip()
    try:
        value = int(t, 16) if t.lower().startswith("0x") else int(t, 10)
    except ValueError:
        return None
    return value if 0 <= value < 1 << 64 else None


@dataclass(frozen=True)
class Place:
    """Where the view is: an address and, when it came from a symbol, the symbol and its start."""

    address: int
    symbol: str | None = None
    symbol_start: int = 0
    cursor: int = 0

    def label(self) -> str:
        if self.symbol is None:
            return f"0x{self.address:x}"
        return f"0x{self.address:x} <{self.symbol}+{self.address - self.symbol_start}>"


def render_rows(data: bytes, address: int, fmt: str, rows: int, *, cursor: int | None = None,
                changed: frozenset[int] = frozenset()) -> list[Text]:
    """The page as styled rows: address, cells in ``fmt``, and the printable bytes.

    ``data`` may be shorter than the page (the rest was unreadable: shown as ``??``).
    ``cursor`` and ``changed`` are byte offsets into the page.
    """
    unit, per_row = VIEW_FORMATS[fmt]
    out: list[Text] = []
    for r in range(rows):
        off = r * per_row
        line = Text(f"0x{address + off:012x}  ", style="bold" if r == 0 else "")
        if fmt != "ascii":
            for u in range(off, off + per_row, unit):
                chunk = data[u:u + unit]
                cur = cursor is not None and u <= cursor < u + unit
                if len(chunk) < unit:
                    cell, style = "0x" + "?" * (unit * 2), "dim"
                else:
                    cell = f"0x{int.from_bytes(chunk, 'little'):0{unit * 2}x}"
                    style = _style(chunk, u, changed)
                if cur:
                    style = f"{style} {CURSOR_STYLE}".strip()
                line.append(cell, style=style)
                line.append(" ")
            line.append(" ")
        for b in range(off, off + per_row):
            if b >= len(data):
                line.append("?", style="dim")
                continue
            byte = data[b]
            style = _style(data[b:b + 1], b, changed)
            if fmt == "ascii" and cursor == b:
                style = f"{style} {CURSOR_STYLE}".strip()
            line.append(chr(byte) if 32 <= byte < 127 else "·" if byte == POISON else ".", style=style)
        out.append(line)
    return out


def _style(chunk: bytes, offset: int, changed: frozenset[int]) -> str:
    if any(offset + i in changed for i in range(len(chunk))):
        return CHANGED_STYLE
    if chunk and chunk.count(POISON) == len(chunk):
        return POISON_STYLE
    return ""


def legend() -> Text:
    return Text.assemble(("changed", CHANGED_STYLE), " since last refresh  ",
                         ("0xdd", POISON_STYLE), " / ", ("·", POISON_STYLE), " pool poison (freed slot)  ",
                         ("cursor", CURSOR_STYLE), "  ", ("??", "dim"), " unreadable")


class HexBody(Static, can_focus=True):
    """The rows; holds the keys so that typing in the address Input never triggers them."""

    BINDINGS = [
        Binding("b", "fmt('xb')", "bytes"),
        Binding("w", "fmt('xw')", "words"),
        Binding("g", "fmt('xg')", "giants"),
        Binding("a", "fmt('ascii')", "ascii"),
        Binding("pagedown", "page(1)", "page down"),
        Binding("pageup", "page(-1)", "page up"),
        Binding("f", "follow", "follow pointer"),
        Binding("backspace,u", "back", "back"),
        Binding("left", "move(-1, 0)", "left", show=False),
        Binding("right", "move(1, 0)", "right", show=False),
        Binding("up", "move(0, -1)", "up", show=False),
        Binding("down", "move(0, 1)", "down", show=False),
        Binding("slash,colon", "focus_input", "address"),
    ]

    def _panel(self) -> MemoryPanel:
        return self.query_ancestor(MemoryPanel)

    def action_fmt(self, fmt: str) -> None:
        self._panel().set_format(fmt)

    def action_page(self, direction: int) -> None:
        self._panel().page(direction)

    def action_follow(self) -> None:
        self._panel().follow_pointer()

    def action_back(self) -> None:
        self._panel().back()

    def action_move(self, dx: int, dy: int) -> None:
        self._panel().move_cursor(dx, dy)

    def action_focus_input(self) -> None:
        self._panel().query_one(Input).focus()


class MemoryPanel(Vertical):
    """A zero-stop hex viewer of the process ``reader`` reads (a MemoryReader from the target's
    services; the panel closes it on unmount). ``rows``: rows per page.
    Call ``refresh_memory()`` on every refresh tick; ``show(text)`` jumps like typing + Enter.
    """

    DEFAULT_CSS = """
    MemoryPanel { height: 1fr; }
    MemoryPanel > #hex-input { height: 3; }
    MemoryPanel > #hex-header { height: 1; padding: 0 1; }
    MemoryPanel > HexBody { height: auto; padding: 0 1; }
    MemoryPanel > HexBody:focus { background: $boost; }
    MemoryPanel > #hex-legend { height: 1; padding: 0 1; }
    MemoryPanel > #hex-status { height: auto; padding: 0 1; }
    """

    class Read(Message):
        """A read finished (in the worker thread); ``error`` is set instead of ``data`` on failure."""

        def __init__(self, generation: int, place: Place, data: bytes | None, error: SourceError | None,
                     navigating: bool) -> None:
            super().__init__()
            self.generation, self.place, self.data, self.error = generation, place, data, error
            self.navigating = navigating

    def __init__(self, reader: MemoryReader, *, rows: int = 16, fmt: str = "xb",
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        if fmt not in VIEW_FORMATS:
            raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(VIEW_FORMATS)}")
        self.reader = reader
        self.rows = rows
        self.fmt = fmt
        self.place: Place | None = None
        self.data: bytes = b""  # the last bytes read (kept on screen when a read fails)
        self.changed: frozenset[int] = frozenset()
        self.history: list[Place] = []  # the back stack of followed pointers
        self.target_gone = False
        self.status = ""  # the last notice, also shown under the rows
        self.read_at: float | None = None
        self._generation = 0
        self._navigating = False  # a jump is in flight: refresh ticks must not overtake it

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Input(placeholder="address (0x...), symbol or symbol.field, then Enter", id="hex-input")
        yield Static("nothing shown yet", id="hex-header")
        yield HexBody("", id="hex-body")
        yield Static(legend(), id="hex-legend")
        yield Static("", id="hex-status")

    def on_unmount(self) -> None:
        self.reader.close()  # stops the symbol table's gdb, if a symbol was typed

    @property
    def page_bytes(self) -> int:
        return VIEW_FORMATS[self.fmt][1] * self.rows

    # ------------------------------------------------------------------ public API
    def refresh_memory(self) -> None:
        """Re-read the current page (zero-stop, in a worker). Cheap no-op when nothing is shown."""
        if self.place is None or self.target_gone or self._navigating:
            return
        self._start_read(self.place, navigating=False)

    def show(self, text: str) -> None:
        """Jump to an address, symbol or symbol.field (as if typed); refusals become a notice."""
        text = text.strip()
        address = parse_address(text)
        if address is None:
            try:
                self.reader.check(text)  # the guard: names, '.', '::', '[N]' only; never reaches gdb otherwise
            except SourceError as e:
                self.notice(str(e), "error")
                return
        self._navigating = True
        self._resolve_and_read(self._next_generation(), text, address)

    def set_format(self, fmt: str) -> None:
        if fmt not in VIEW_FORMATS or fmt == self.fmt:
            return
        self.fmt = fmt
        if self.place is not None:
            unit = VIEW_FORMATS[fmt][0]
            self.place = Place(self.place.address, self.place.symbol, self.place.symbol_start,
                               min(self.place.cursor - self.place.cursor % unit, self.page_bytes - unit))
            if len(self.data) < self.page_bytes:
                self._start_read(self.place, navigating=True)  # a wider page needs more bytes
        self._redraw()

    def page(self, direction: int) -> None:
        if self.place is None:
            return
        p = self.place
        address = p.address + direction * self.page_bytes
        if not 0 <= address < 1 << 64:
            self.notice("the address space ends here", "warning")
            return
        self._start_read(Place(address, p.symbol, p.symbol_start, p.cursor), navigating=True)

    def move_cursor(self, dx: int, dy: int) -> None:
        if self.place is None:
            return
        unit, per_row = VIEW_FORMATS[self.fmt]
        cur = self.place.cursor + dx * unit + dy * per_row
        if 0 <= cur < self.page_bytes:
            self.place = Place(self.place.address, self.place.symbol, self.place.symbol_start, cur)
            self._redraw()
        elif dy or dx:
            self.page(1 if cur >= self.page_bytes else -1)

    @property
    def cursor_address(self) -> int | None:
        return None if self.place is None else self.place.address + self.place.cursor

    def follow_pointer(self) -> None:
        """Treat the 8 bytes under the cursor as a little-endian address and show what it points to."""
        if self.place is None:
            return
        cur = self.place.cursor
        raw = self.data[cur:cur + 8]
        if len(raw) < 8:
            self.notice("fewer than 8 readable bytes under the cursor: not a pointer", "warning")
            return
        target = int.from_bytes(raw, "little")
        if target == 0:
            self.notice(f"0x{self.place.address + cur:x} holds a null pointer", "warning")
            return
        self._start_read(Place(target), navigating=True, push=True)

    def back(self) -> None:
        if not self.history:
            self.notice("nothing to go back to", "warning")
            return
        self._start_read(self.history.pop(), navigating=True)

    def notice(self, message: str, severity: str = "information") -> None:
        """A visible notice: a toast, and the status line under the rows (it stays there)."""
        self.status = message
        style = {"error": "bold red", "warning": "yellow"}.get(severity, "")
        self.query_one("#hex-status", Static).update(plain(message, style))
        notify_plain(self, message, severity=severity, timeout=4)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ input
    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip():
            self.show(event.value)
            self.query_one(HexBody).focus()

    # ------------------------------------------------------------------ reads (worker thread)
    @work(thread=True, exclusive=True, group="hexview-resolve", exit_on_error=False)
    def _resolve_and_read(self, generation: int, text: str, address: int | None) -> None:
        try:
            if address is None:
                where = self.reader.locate(text)
                place = Place(where.address, where.symbol, where.symbol_start)
            else:
                place = Place(address)
        except SourceError as e:
            self.post_message(self.Read(generation, Place(address or 0), None, e, True))
            return
        self._read(generation, place, navigating=True)

    def _start_read(self, place: Place, *, navigating: bool, push: bool = False) -> None:
        if push and self.place is not None:
            self.history.append(self.place)
        self._navigating = self._navigating or navigating
        self._read_worker(self._next_generation(), place, navigating)

    @work(thread=True, exclusive=True, group="hexview-read", exit_on_error=False)
    def _read_worker(self, generation: int, place: Place, navigating: bool) -> None:
        self._read(generation, place, navigating)

    def _next_generation(self) -> int:
        self._generation += 1
        return self._generation

    def _read(self, generation: int, place: Place, navigating: bool) -> None:
        length = self.page_bytes
        try:
            data = self.reader.read(place.address, length)
        except UnmappedAddress as e:
            first_bad = getattr(e, "first_unreadable", place.address)
            if first_bad <= place.address:
                self.post_message(self.Read(generation, place, None, e, navigating))
                return
            try:  # the page runs off the end of a mapping: show what is readable, '??' for the rest
                data = self.reader.read(place.address, first_bad - place.address)
            except SourceError as e2:
                self.post_message(self.Read(generation, place, None, e2, navigating))
                return
        except SourceError as e:
            self.post_message(self.Read(generation, place, None, e, navigating))
            return
        self.post_message(self.Read(generation, place, data, None, navigating))

    def on_memory_panel_read(self, message: Read) -> None:
        message.stop()
        if message.generation != self._generation:
            return  # the user moved on while this read was in flight
        self._navigating = False
        if message.error is not None:
            e = message.error
            if isinstance(e, (NoSuchProcess, ZombieProcess)):
                self.target_gone = True
                self.notice(f"target gone: {e}; showing the last data read", "error")
            elif isinstance(e, UnmappedAddress) and message.navigating:
                self.notice(f"0x{message.place.address:x} is not mapped in process {self.reader.pid}: "
                            "nothing to show there (view unchanged)", "error")
                if self.history and self.history[-1] == self.place and message.place.symbol is None:
                    self.history.pop()  # a followed pointer that leads nowhere: nothing to go back from
            else:
                self.notice(str(e), "error")
            self._redraw()
            return
        data = message.data or b""
        same = (self.place is not None and not message.navigating
                and message.place.address == self.place.address)
        if same:
            n = min(len(data), len(self.data))
            self.changed = frozenset(i for i in range(n) if data[i] != self.data[i])
        else:
            self.changed = frozenset()
            if self.status:
                self.status = ""
                self.query_one("#hex-status", Static).update("")
        if message.navigating or self.place is None:
            self.place = message.place
        self.data = data
        self.read_at = time.monotonic()
        self._redraw()

    # ------------------------------------------------------------------ drawing
    def _redraw(self) -> None:
        if self.place is None:
            return
        p = self.place
        unit = VIEW_FORMATS[self.fmt][0]
        under = self.data[p.cursor:p.cursor + 8]
        ptr = f"  *cursor = 0x{int.from_bytes(under, 'little'):x}" if len(under) == 8 else ""
        gone = "  [target gone]" if self.target_gone else ""
        header = Text.assemble((visible(p.label()), "bold"), f"  x/{self.fmt}  cursor 0x{p.address + p.cursor:x}{ptr}",
                               f"  back {len(self.history)}" if self.history else "", (gone, "bold red"))
        self.query_one("#hex-header", Static).update(header)
        rows = render_rows(self.data, p.address, self.fmt, self.rows,
                           cursor=p.cursor - p.cursor % unit, changed=self.changed)
        self.query_one(HexBody).update(Text("\n").join(rows))
