"""Allocator views (object pool, arena, SPSC ring) decoded by field name from a DWARF layout.

Only the counters are read: ``counter_span`` gives the byte range that covers them, so a
sampler reads a few hundred bytes, never a pool's whole slot array.
"""

from __future__ import annotations

from dataclasses import dataclass

from hftmem_tui.model.decode import decode_field
from hftmem_tui.sources.errors import SymbolNotFound
from hftmem_tui.sources.symbols import Layout

# View field -> member name in the C++ type (the demo engine's names; other engines map their own).
POOL_FIELDS = {"live": "live_", "capacity": "capacity_", "high_water": "high_water_", "rejects": "rejects_",
               "double_frees": "double_frees_", "poison_violations": "poison_violations_"}
ARENA_FIELDS = {"used": "used_", "capacity": "capacity_", "high_water": "high_water_", "resets": "resets_",
                "failed": "failed_"}
RING_FIELDS = {"head": "head_", "tail": "tail_", "capacity": "capacity_", "push_failures": "push_failures_"}
FIELDS = {"pool": POOL_FIELDS, "arena": ARENA_FIELDS, "ring": RING_FIELDS}


@dataclass(frozen=True, slots=True)
class PoolView:
    symbol: str
    live: int
    capacity: int
    high_water: int
    rejects: int
    double_frees: int
    poison_violations: int


@dataclass(frozen=True, slots=True)
class ArenaView:
    symbol: str
    used: int
    capacity: int
    high_water: int
    resets: int
    failed: int


@dataclass(frozen=True, slots=True)
class RingView:
    symbol: str
    depth: int
    capacity: int
    push_failures: int


def counter_span(layout: Layout, kind: str) -> tuple[int, int]:
    """(offset, length) of the smallest byte range holding every counter of ``kind``.

    Raises SymbolNotFound naming the member the layout lacks.
    """
    fields = [_member(layout, m) for m in FIELDS[kind].values()]
    start = min(f.offset for f in fields)
    return start, max(f.offset + f.size for f in fields) - start


def _member(layout: Layout, name: str):
    f = layout.get(name)
    if f is None:
        raise SymbolNotFound(f"{layout.type_name} has no member '{name}': not a hftmem-style allocator")
    return f


def decode_view(kind: str, symbol: str, layout: Layout, data: bytes, start: int) -> PoolView | ArenaView | RingView:
    """Decode the counters of ``kind`` from ``data``, which holds the layout's bytes from ``start``."""
    pad = bytes(start) + data  # decode_field works on whole-object offsets
    values = {view: int(decode_field(_member(layout, m), pad)) for view, m in FIELDS[kind].items()}
    if kind == "pool":
        return PoolView(symbol, **values)
    if kind == "arena":
        return ArenaView(symbol, **values)
    depth = values["tail"] - values["head"]  # monotonic indices; a racy read can be briefly off by a few
    return RingView(symbol, max(0, min(depth, values["capacity"])), values["capacity"], values["push_failures"])
