"""Allocator views decoded by member name from real `ptype/o` output of the demo engine."""

from __future__ import annotations

import struct

import pytest

from hftmem_tui.errors import SymbolNotFound
from hftmem_tui.model.allocators import counter_span, decode_view
from hftmem_tui.sources.symbols import parse_ptype_o
from tests.conftest import FIXTURES

FIX = FIXTURES / "gdb"


def _layout(symbol):
    return parse_ptype_o((FIX / f"ptype_o_{symbol}.txt").read_text())


def _object(layout, values):
    buf = bytearray(layout.size)
    for member, v in values.items():
        struct.pack_into("<Q", buf, layout.field(member).offset, v)
    return bytes(buf)


def test_ring_layout_parses_even_without_gdbs_offset_banner():
    text = (FIX / "ptype_o_hftmem_md_ring.txt").read_text()
    assert not text.startswith("/*")  # gdb 13 prints this class without the banner
    lay = parse_ptype_o(text)
    assert lay.type_name.startswith("class hftmem::BasicSpscRing<Tick, 4096, true>")
    assert lay.field("head_").offset - lay.field("tail_").offset >= 64  # separate cache lines


def test_ring_depth_and_span_cover_only_counters():
    lay = _layout("hftmem_md_ring")
    start, length = counter_span(lay, "ring")
    assert length < 256  # never the 128 KiB slot array
    data = _object(lay, {"tail_": 1000, "head_": 990, "capacity_": 4096, "push_failures_": 7})
    view = decode_view("ring", "hftmem_md_ring", lay, data[start:start + length], start)
    assert (view.depth, view.capacity, view.push_failures) == (10, 4096, 7)


def test_pool_view_by_member_name():
    lay = _layout("hftmem_order_pool")
    start, length = counter_span(lay, "pool")
    assert length < 128
    data = _object(lay, {"live_": 64, "capacity_": 4096, "high_water_": 65, "rejects_": 3,
                         "double_frees_": 2, "poison_violations_": 1})
    view = decode_view("pool", "hftmem_order_pool", lay, data[start:start + length], start)
    assert (view.live, view.capacity, view.high_water, view.rejects, view.double_frees,
            view.poison_violations) == (64, 4096, 65, 3, 2, 1)


def test_arena_view_and_a_type_that_is_not_an_allocator():
    lay = _layout("hftmem_scratch_arena")
    start, length = counter_span(lay, "arena")
    data = _object(lay, {"used_": 416, "capacity_": 1 << 20, "high_water_": 512, "resets_": 9, "failed_": 0})
    view = decode_view("arena", "a", lay, data[start:start + length], start)
    assert (view.used, view.capacity, view.high_water, view.resets) == (416, 1 << 20, 512, 9)
    with pytest.raises(SymbolNotFound, match="no member 'live_'"):
        counter_span(lay, "pool")
