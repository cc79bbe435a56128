"""The engine reader on the real engine: examples/allocators.toml gives the same views as the
built-in description; any struct with counters gets a gauge; `hftmem snapshot --allocators`."""

from __future__ import annotations

import dataclasses
import json

from hftmem_tui.feeds.engine_reader import (
    DEMO_ALLOCATORS,
    EngineReader,
    read_engine_stats,
)
from hftmem_tui.model.allocators import counter_span, decode_view
from hftmem_tui.model.allocconfig import load_allocators, parse_allocators
from hftmem_tui.sources.memory import read_memory
from hftmem_tui.sources.symbols import SymbolTable
from tests.conftest import ROOT, run_cli

EXAMPLE = ROOT / "examples" / "allocators.toml"


def test_example_config_yields_the_builtin_views(engine):
    pid = engine()
    specs = load_allocators(EXAMPLE)
    with SymbolTable.for_pid(pid) as table:
        for spec, (symbol, kind) in zip(specs, DEMO_ALLOCATORS, strict=True):
            assert (spec.symbol, spec.kind) == (symbol, kind)
            layout = table.layout(symbol)
            # One read of bytes both descriptions cover, decoded twice: the counters move every
            # microsecond, so only the same bytes can prove the two descriptions agree.
            a0, an = counter_span(layout, kind)
            b0, bn = counter_span(layout, kind, spec.field_map)
            start, end = min(a0, b0), max(a0 + an, b0 + bn)
            base = table.runtime_address(table.resolve(symbol), pid)
            data = read_memory(pid, base + start, end - start)
            builtin = decode_view(kind, symbol, layout, data[a0 - start:a0 - start + an], a0)
            configured = decode_view(kind, symbol, layout, data[b0 - start:b0 - start + bn], b0, spec.field_map)
            assert configured == builtin
            assert None not in dataclasses.astuple(configured)
        # And the live path end to end: capacities are constants of the engine.
        configured = EngineReader(pid, specs, table=table)
        assert configured.notes == [] and configured.has_stats
        assert [(v.symbol, v.capacity) for v in configured.read_allocators()] == [
            (v.symbol, v.capacity) for v in EngineReader(pid, table=table).read_allocators()]


def test_any_struct_with_counters_gets_a_gauge(engine):
    """Not hftmem's ObjectPool at all: the stats block's pool mirror described as a pool."""
    pid = engine()
    specs = parse_allocators('''
[[allocator]]
symbol = "hftmem_engine_stats"
kind = "pool"
live = "pool_live"
capacity = "pool_capacity"
high_water = "pool_high_water"
rejects = { member = "pool_rejects", scale = 1 }

[[allocator]]
symbol = "hftmem_no_such_global"
kind = "arena"
used = "used_"
capacity = 1024
''', "mine.toml")
    with SymbolTable.for_pid(pid) as table:
        reader = EngineReader(pid, specs, table=table)
        views, notes = reader.read_allocators(), reader.notes
        stats = read_engine_stats(pid, table)
    (view,) = views
    assert view.symbol == "hftmem_engine_stats" and view.capacity == stats.pool_capacity == 4096
    assert 0 < view.live <= view.high_water <= view.capacity and view.rejects == 0
    assert view.double_frees is None and view.poison_violations is None
    assert len(notes) == 1 and notes[0].startswith("allocator hftmem_no_such_global (line 10): no symbol"), notes


def test_snapshot_command_with_allocators_file(engine, tmp_path):
    pid = engine()
    r = run_cli("snapshot", str(pid), "--json", "--no-perf", "--allocators", str(EXAMPLE))
    assert r.returncode == 0, r.stderr
    views = {v["symbol"]: v for v in json.loads(r.stdout)["allocators"]}
    assert list(views) == [s for s, _ in DEMO_ALLOCATORS]
    assert views["hftmem_order_pool"]["capacity"] == 4096 and views["hftmem_md_ring"]["capacity"] == 4096
    bad = tmp_path / "bad.toml"
    bad.write_text('[[allocator]]\nsymbol = "hftmem_order_pool"\nkind = "pool"\nlive = "live_"\n')
    r = run_cli("snapshot", str(pid), "--no-perf", "--allocators", str(bad))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == f"hftmem: {bad}:1: pool 'hftmem_order_pool' needs capacity\n"
