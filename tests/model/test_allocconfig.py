"""Allocator descriptions in TOML: parsing, validation errors with file:line, decoding by spec."""

from __future__ import annotations

import struct

import pytest

from hftmem_tui.errors import ConfigError, SourceError
from hftmem_tui.feeds.engine_reader import DEMO_ALLOCATORS
from hftmem_tui.model.allocators import FieldSpec, PoolView, counter_span, decode_view
from hftmem_tui.model.allocconfig import load_allocators, parse_allocators, specs_for
from hftmem_tui.sources.symbols import parse_ptype_o
from tests.conftest import ROOT

FIX = ROOT / "tests" / "fixtures" / "gdb"


def _layout(symbol):
    return parse_ptype_o((FIX / f"ptype_o_{symbol}.txt").read_text())


def test_example_file_describes_exactly_the_builtin_demo_allocators():
    specs = load_allocators(ROOT / "examples" / "allocators.toml")
    assert [(s.symbol, s.kind) for s in specs] == list(DEMO_ALLOCATORS)
    assert [s.field_map for s in specs] == [s.field_map for s in specs_for(DEMO_ALLOCATORS)]
    assert specs[0].units == "orders" and specs[0].line > 0
    assert ConfigError.__mro__[1] is SourceError


def test_constants_scale_nested_members_and_optional_counters():
    text = '''
[[allocator]]
symbol = "engine::g_pool"
kind = "pool"
live = { member = "live_", scale = 2 }
capacity = 4096
'''
    (spec,) = parse_allocators(text, "x.toml")
    assert spec.symbol == "engine::g_pool" and spec.line == 2
    assert spec.field_map == {"live": FieldSpec("live_", None, 2), "capacity": FieldSpec(None, 4096)}
    lay = _layout("hftmem_order_pool")
    start, length = counter_span(lay, "pool", spec.field_map)
    assert length == lay.field("live_").size  # only what is read: the constant costs no bytes
    buf = bytearray(lay.size)
    struct.pack_into("<Q", buf, lay.field("live_").offset, 21)
    view = decode_view("pool", "p", lay, bytes(buf[start:start + length]), start, spec.field_map)
    assert view == PoolView("p", 42, 4096, None, None, None, None)  # absent counters are None, not 0


def test_ring_depth_instead_of_head_and_tail():
    (spec,) = parse_allocators('[[allocator]]\nsymbol="r"\nkind="ring"\ndepth="tail_"\ncapacity="capacity_"\n')
    lay = _layout("hftmem_md_ring")
    buf = bytearray(lay.size)
    struct.pack_into("<Q", buf, lay.field("tail_").offset, 12)
    struct.pack_into("<Q", buf, lay.field("capacity_").offset, 4096)
    start, length = counter_span(lay, "ring", spec.field_map)
    view = decode_view("ring", "r", lay, bytes(buf[start:start + length]), start, spec.field_map)
    assert (view.depth, view.capacity, view.push_failures) == (12, 4096, None)


@pytest.mark.parametrize("text, message", [
    ('[[allocator]]\nsymbol = "p"\nkind = "heap"\n', "t.toml:3: kind must be one of pool, arena, ring (got 'heap')"),
    ('[[allocator]]\nkind = "pool"\n', "t.toml:1: each allocator needs symbol"),
    ('[[allocator]]\nsymbol = "x = 1"\nkind = "pool"\n', "t.toml:2: each allocator needs symbol = \"global_name\" (got 'x = 1')"),
    ('# c\n\n[[allocator]]\nsymbol = "p"\nkind = "pool"\nlive = "live_"\n', "t.toml:3: pool 'p' needs capacity"),
    ('[[allocator]]\nsymbol = "p"\nkind = "pool"\nlive = "live_"\ncapacity = 1\nliv = "x"\n',
     "t.toml:6: unknown key 'liv' for a pool (known: live, capacity"),
    ('[[allocator]]\nsymbol = "r"\nkind = "ring"\ncapacity = 8\nhead = "h"\n', "t.toml:1: ring 'r' needs depth (or head and tail)"),
    ('[[allocator]]\nsymbol = "p"\nkind = "arena"\nused = "a()"\ncapacity = 1\n', "t.toml:4: 'used' = 'a()' is not a member path"),
    ('[[allocator]]\nsymbol = "p"\nkind = "arena"\nused = "u"\ncapacity = -1\n', "t.toml:5: 'capacity' = -1: a constant counter cannot be negative"),
    ('[[allocator]]\nsymbol = "p"\nkind = "arena"\nused = { member = "u", scale = 0 }\ncapacity = 1\n',
     "t.toml:4: 'used': scale must be a positive number"),
    ('[[allocator]]\nsymbol = "p"\nkind = "arena"\nused = { member = "u", constant = 3 }\ncapacity = 1\n',
     "t.toml:4: 'used': give exactly one of member or constant"),
    ('[[allocator]]\nsymbol = "p"\nkind = "arena"\nused = "u"\ncapacity = 1\n[[allocator]]\nsymbol = "p"\nkind = "pool"\n',
     "t.toml:6: 'p' is already described at line 1"),
    ('[[allocator]]\nsymbol = "p"\nkind = "pool"\nlive = "a\n', "t.toml:4: not valid TOML"),
    ('[pool]\nsymbol = "p"\n', "t.toml: unknown top-level key 'pool'"),
    ('', "t.toml: no [[allocator]] table"),
])
def test_errors_name_the_line(text, message):
    with pytest.raises(ConfigError) as err:
        parse_allocators(text, "t.toml")
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_allocators(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_allocators(tmp_path)
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe[[")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_allocators(bad)
