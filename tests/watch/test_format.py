"""Hit text: the CLI's block per hit (byte for byte what `hftmem watch` printed before), the pane's cells."""

from __future__ import annotations

import time

from hftmem_tui.sources.watchpoint import Frame, WatchHit, WatchSpec
from hftmem_tui.watch.format import (
    backtrace_lines,
    first_hit_lines,
    format_hit,
    hit_clock,
    log_value,
    ms,
    short_function,
    short_where,
    value_text,
)

T = 1795917271.398930
TOP = Frame(0x5555deadbeef, "engine::run_producer(engine::Config const&)", 0x4c, "/src/native/engine/engine.h", 120)
CALLER = Frame(0x5555deadc000, "main", None, "/src/native/engine/main.cpp", None)
U64 = WatchSpec(0x1000, 8, "write", "hftmem_engine_stats.ticks", "unsigned long")
I32 = WatchSpec(0x1000, 4, "rw", "order.qty", "int")


def hit(spec=U64, old=b"\x05" + b"\0" * 7, new=b"\x06" + b"\0" * 7, *, after=True, extra=None, pause=None,
        location=TOP, backtrace=(TOP, Frame(0x10, None), CALLER), backend="perf") -> WatchHit:
    return WatchHit(T, spec, 4242, old, new, after, location, backtrace, pause, backend,
                    {"read_lag_s": 0.0000123} if extra is None else extra)


def clock() -> str:
    return time.strftime("%H:%M:%S", time.localtime(T)) + ".398930"


def test_cli_block_is_unchanged():
    assert format_hit(hit(), 3, T - 1.5) == [
        f"hit 3 at {clock()} (+1.500 s) tid 4242 hftmem_engine_stats.ticks: 5 -> 6 (read 12 us after the write)",
        "  at 0x5555deadbeef engine::run_producer(engine::Config const&)+0x4c at /src/native/engine/engine.h:120",
        "    #0 0x5555deadbeef engine::run_producer(engine::Config const&)+0x4c at /src/native/engine/engine.h:120",
        "    #1 0x10 ??",
        "    #2 0x5555deadc000 main at /src/native/engine/main.cpp",
    ]


def test_gdb_hit_without_location_or_lag():
    lines = format_hit(hit(I32, b"\x07\0\0\0", None, after=False, extra={}, location=None, backtrace=(),
                           pause=0.0042, backend="gdb"), 1)
    assert lines == [f"hit 1 at {clock()} tid 4242 order.qty: 7 -> ?", "  at ??"]
    assert format_hit(hit(extra={}), 1)[0].endswith("5 -> 6 (read after the write)")


def test_values_signed_when_the_type_is_and_hex_above_32_bits():
    assert value_text((-3).to_bytes(4, "little", signed=True), I32) == "-3 (0xfffffffd)"
    assert value_text((-3).to_bytes(8, "little", signed=True), U64) == "0xfffffffffffffffd"
    assert value_text((1 << 32).to_bytes(8, "little"), U64) == "0x100000000"
    assert value_text(None, U64) == "?"


def test_pane_cells_and_detail():
    h = hit(pause=0.0042, after=False, backend="gdb")
    assert short_function("engine::run_producer(engine::Config const&)") == "engine::run_producer"
    assert short_where(h) == "engine::run_producer+0x4c engine.h:120"
    assert short_where(hit(location=Frame(0x42, None))) == "0x42"
    assert short_where(hit(location=None)) == "??"
    assert log_value(hit()) == "5 -> 6 (read after)" and log_value(h) == "5 -> 6"
    assert hit_clock(T) == clock() and ms(0.0042) == "4.2 ms" and ms(None) == "?"
    lines = backtrace_lines(h)
    assert lines[0].startswith(f"gdb hit at {clock()} tid 4242")
    assert lines[-1] == "  the writing thread was stopped 4.2 ms for this hit"


def test_tour_shows_text_bytes():
    lines = first_hit_lines(hit(new=b"AAPL\0\0\0\0"))
    assert lines[0].startswith("hit 1 at ") and lines[0].endswith("  bytes 'AAPL'")
    assert "bytes" not in first_hit_lines(hit())[0]
