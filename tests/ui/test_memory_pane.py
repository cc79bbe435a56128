"""MemoryPanel alone in a tiny App: against the real demo engine (real gdb symbols, real reads), and,
for the drawing, on a buffer of this very process (real reads, no engine)."""

from __future__ import annotations

import asyncio
import ctypes
import os

from textual.app import App, ComposeResult

from hftmem_tui.services import MemoryReader
from hftmem_tui.sources.memory import read_memory
from hftmem_tui.sources.symbols import SymbolTable
from hftmem_tui.ui.memory_pane import (
    CHANGED_STYLE,
    POISON,
    POISON_STYLE,
    VIEW_FORMATS,
    HexBody,
    MemoryPanel,
)

assert "yellow" in CHANGED_STYLE and POISON_STYLE == "magenta"  # what the style checks below look for
from tests.conftest import proc_status, stop_process
from tests.helpers import wait_engine_advances


class HexApp(App):
    def __init__(self, pid: int) -> None:
        super().__init__()
        self.pid = pid

    def compose(self) -> ComposeResult:
        yield MemoryPanel(MemoryReader(self.pid))


async def settle(app: App, pilot) -> None:
    """Wait for the panel's read worker and for its message to be handled."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def type_and_enter(app, pilot, text: str) -> None:
    panel = app.query_one(MemoryPanel)
    panel.query_one("#hex-input").focus()
    panel.query_one("#hex-input").value = ""
    await pilot.press(*text, "enter")
    await settle(app, pilot)


def body_text(app) -> str:
    return app.query_one(HexBody).render().plain


def body_styles(app) -> set[str]:
    return {str(span.style) for span in app.query_one(HexBody).render().spans}


def test_memory_panel_on_the_real_engine(engine):
    pid = engine()
    with SymbolTable.for_pid(pid) as table:
        stats_addr = table.runtime_address(table.resolve("hftmem_engine_stats"), pid)

    async def run() -> None:
        app = HexApp(pid)
        async with app.run_test(size=(100, 30)) as pilot:
            panel = app.query_one(MemoryPanel)
            await type_and_enter(app, pilot, "hftmem_engine_stats")
            assert panel.place.address == stats_addr and panel.status == ""
            assert "<hftmem_engine_stats+0>" in str(app.query_one("#hex-header").render())
            first = body_text(app).splitlines()[0]
            assert first.startswith(f"0x{stats_addr:012x}") and first.endswith("HFTMEM01")  # xb: 8 bytes a row
            assert app.query_one(HexBody).has_focus

            await pilot.press("w")  # gdb x/4xw rows
            await settle(app, pilot)
            first = body_text(app).splitlines()[0]
            assert f"0x{int.from_bytes(b'HFTM', 'little'):08x} 0x{int.from_bytes(b'EM01', 'little'):08x}" in first
            assert panel.fmt == "xw" and len(panel.data) == panel.page_bytes == VIEW_FORMATS["xw"][1] * panel.rows

            await pilot.press("pagedown")
            await settle(app, pilot)
            assert panel.place.address == stats_addr + panel.page_bytes
            assert body_text(app).startswith(f"0x{stats_addr + panel.page_bytes:012x}")
            await pilot.press("pageup")
            await settle(app, pilot)
            assert panel.place.address == stats_addr

            # ticks (offset 32) and messages (40) move every microsecond: highlighted after a refresh.
            wait_engine_advances(pid, "hftmem_engine_stats.messages")  # moved since the last read
            panel.refresh_memory()
            await settle(app, pilot)
            assert panel.changed & set(range(32, 48)), panel.changed
            assert not panel.changed & set(range(0, 8))  # the magic never changes
            assert any("on ansi_yellow" in st for st in body_styles(app))  # CHANGED_STYLE

            await type_and_enter(app, pilot, "x = 1")
            assert panel.status.startswith("refused expression 'x = 1'") and panel.place.address == stats_addr
            await type_and_enter(app, pilot, "hftmem_no_such_symbol")
            assert "no symbol 'hftmem_no_such_symbol'" in panel.status and panel.place.address == stats_addr
            await type_and_enter(app, pilot, "0x10")
            assert "0x10 is not mapped" in panel.status and panel.place.address == stats_addr
            assert body_text(app).startswith(f"0x{stats_addr:012x}")  # the last data stays
            st = proc_status(pid)
            assert st["TracerPid"] == "0" and st["State"][0] in "RS"  # every read was zero-stop

    asyncio.run(run())


def test_follow_a_pointer_into_the_poisoned_pool_and_back(engine):
    pid = engine()

    async def run() -> None:
        app = HexApp(pid)
        async with app.run_test(size=(100, 30)) as pilot:
            panel = app.query_one(MemoryPanel)
            # Deep in the pool: never handed out (LIFO reuse keeps the first slots busy), so poisoned.
            await type_and_enter(app, pilot, "hftmem_order_pool.slots_[4000]")
            head = panel.place
            assert head.symbol == "hftmem_order_pool" and head.address > head.symbol_start
            # A free slot: next pointer, then 0xDD in every other byte of the 64-byte Order.
            assert panel.data[8:64] == bytes([POISON]) * 56, panel.data[:64].hex()
            assert any(st.startswith("ansi_magenta") for st in body_styles(app))
            await pilot.press("g", "f")  # follow the 8 bytes under the cursor: the next free slot
            await settle(app, pilot)
            assert panel.place.address != head.address and panel.history == [head]
            assert panel.place.address == int.from_bytes(read_memory(pid, head.address, 8), "little")
            assert panel.data[8:64] == bytes([POISON]) * 56 and "0xdddddddddddddddd" in body_text(app)
            await pilot.press("u")
            await settle(app, pilot)
            assert panel.place.address == head.address and panel.history == []

    asyncio.run(run())


def test_target_gone_keeps_the_last_data(engine):
    pid = engine()

    async def run() -> None:
        app = HexApp(pid)
        async with app.run_test(size=(100, 30)) as pilot:
            panel = app.query_one(MemoryPanel)
            await type_and_enter(app, pilot, "hftmem_engine_stats")
            before = body_text(app)
            stop_process(pid)
            panel.refresh_memory()
            await settle(app, pilot)
            assert panel.target_gone and panel.status.startswith("target gone")
            assert body_text(app) == before and "HFTMEM01" in before
            panel.refresh_memory()  # no more reads once the target is gone
            await settle(app, pilot)
            assert panel.target_gone

    asyncio.run(run())


def test_hex_view_draws_a_buffer_of_this_process():
    """Formats, poison, changed bytes, follow and back, drawn from a buffer of our own (no engine)."""
    buf = ctypes.create_string_buffer(512)
    base = ctypes.addressof(buf)
    buf[0:8] = (base + 64).to_bytes(8, "little")  # a "next" pointer to the second slot
    buf[8:64] = bytes([POISON]) * 56  # a freed slot's poison
    buf[64:72] = b"HFTMEM01"

    async def run() -> None:
        app = HexApp(os.getpid())
        async with app.run_test(size=(100, 30)) as pilot:
            panel = app.query_one(MemoryPanel)
            await type_and_enter(app, pilot, hex(base))
            assert panel.place.address == base and panel.place.symbol is None
            first = body_text(app).splitlines()[0]
            assert first.startswith(f"0x{base:012x}")
            assert any(st.startswith("ansi_magenta") for st in body_styles(app))  # POISON_STYLE
            await pilot.press("a")  # ascii rows: 32 bytes each, poison shown as '·'
            await settle(app, pilot)
            assert "·" * 24 in body_text(app).splitlines()[0]
            await pilot.press("g", "f")  # the 8 bytes under the cursor, as a pointer
            await settle(app, pilot)
            assert panel.place.address == base + 64 and "HFTMEM01" in body_text(app).splitlines()[0]
            buf[64:66] = b"XY"
            panel.refresh_memory()
            await settle(app, pilot)
            assert panel.changed == {0, 1} and any("on ansi_yellow" in st for st in body_styles(app))
            await pilot.press("u")
            await settle(app, pilot)
            assert panel.place.address == base and panel.history == []

    asyncio.run(run())
