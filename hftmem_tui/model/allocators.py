"""Allocator views (object pool, arena, SPSC ring) decoded by field name from a DWARF layout.

Only the counters are read: ``counter_span`` gives the byte range that covers them, so a
sampler reads a few hundred bytes, never a pool's whole slot array.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collections.abc import Mapping
from dataclasses import dataclass

from hftmem_tui.model.decode import decode_field
from hftmem_tui.errors import SymbolNotFound

if TYPE_CHECKING:  # types only: model imports no source at run time
    from hftmem_tui.sources.symbols import Layout

# View field -> member name in the C++ type (the demo engine's names; other engines describe
# their own in a TOML file, see model/allocconfig.py).
POOL_FIELDS = {"live": "live_", "capacity": "capacity_", "high_water": "high_water_", "rejects": "rejects_",
               "double_frees": "double_frees_", "poison_violations": "poison_violations_"}
ARENA_FIELDS = {"used": "used_", "capacity": "capacity_", "high_water": "high_water_", "resets": "resets_",
                "failed": "failed_"}
RING_FIELDS = {"head": "head_", "tail": "tail_", "capacity": "capacity_", "push_failures": "push_failures_"}
FIELDS = {"pool": POOL_FIELDS, "arena": ARENA_FIELDS, "ring": RING_FIELDS}
KINDS = tuple(FIELDS)
# What a view needs to exist at all; every other counter is optional (None in the view when absent).
REQUIRED = {"pool": ("live", "capacity"), "arena": ("used", "capacity"), "ring": ("capacity",)}
# Every view field a description may name, per kind (a ring may give depth instead of head/tail).
VIEW_FIELDS = {"pool": tuple(POOL_FIELDS), "arena": tuple(ARENA_FIELDS),
               "ring": ("head", "tail", "depth", "capacity", "push_failures")}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """Where one view counter comes from: a member path of the object, or a constant.

    ``member`` is a dotted path into the layout (``stats.live``); ``constant`` serves counters
    that are compile-time (a template parameter N has no storage). The value is multiplied by
    ``scale`` (e.g. slots -> bytes, 8-byte words -> bytes).
    """

    member: str | None = None
    constant: int | None = None
    scale: int | float = 1


def builtin_fields(kind: str) -> dict[str, FieldSpec]:
    """The demo engine's (hftmem's own ObjectPool / Arena / SpscRing) member names as FieldSpecs."""
    return {view: FieldSpec(member) for view, member in FIELDS[kind].items()}


@dataclass(frozen=True, slots=True)
class PoolView:
    """An object pool. Optional counters are None when the engine's type has no such member."""

    symbol: str
    live: int
    capacity: int
    high_water: int | None
    rejects: int | None
    double_frees: int | None
    poison_violations: int | None


@dataclass(frozen=True, slots=True)
class ArenaView:
    symbol: str
    used: int
    capacity: int
    high_water: int | None
    resets: int | None
    failed: int | None


@dataclass(frozen=True, slots=True)
class RingView:
    symbol: str
    depth: int
    capacity: int
    push_failures: int | None
    pushed: int | None = None  # the free-running tail index: items ever pushed (None when only depth is known)


def counter_span(layout: Layout, kind: str, fields: Mapping[str, FieldSpec] | None = None) -> tuple[int, int]:
    """(offset, length) of the smallest byte range holding every counter of ``kind``.

    ``fields`` defaults to the demo engine's member names. (0, 0) when every counter is a
    constant. Raises SymbolNotFound naming the member the layout lacks.
    """
    fields = builtin_fields(kind) if fields is None else fields
    members = [_member(layout, spec.member) for spec in fields.values() if spec.member is not None]
    if not members:
        return 0, 0
    start = min(f.offset for f in members)
    return start, max(f.offset + f.size for f in members) - start


def _member(layout: Layout, name: str):
    f = layout.get(name)
    if f is None:
        raise SymbolNotFound(f"{layout.type_name} has no member '{name}'")
    return f


def _value(layout: Layout, spec: FieldSpec, data: bytes, view: str) -> int:
    if spec.member is None:
        raw = spec.constant or 0
    else:
        raw = decode_field(_member(layout, spec.member), data)
        if not isinstance(raw, (int, float)):
            raise SymbolNotFound(f"member '{spec.member}' of {layout.type_name} is not a number (for '{view}')")
    return int(raw * spec.scale) if spec.scale != 1 else int(raw)


def decode_view(kind: str, symbol: str, layout: Layout, data: bytes, start: int,
                fields: Mapping[str, FieldSpec] | None = None) -> PoolView | ArenaView | RingView:
    """Decode the counters of ``kind`` from ``data``, which holds the layout's bytes from ``start``.

    ``fields`` (view field -> FieldSpec) defaults to the demo engine's member names; counters it
    does not name are None in the view.
    """
    fields = builtin_fields(kind) if fields is None else fields
    pad = bytes(start) + data  # decode_field works on whole-object offsets
    values: dict[str, int | None] = {view: _value(layout, spec, pad, view) for view, spec in fields.items()}
    if kind == "pool":
        return PoolView(symbol, **{f: values.get(f) for f in POOL_FIELDS})  # type: ignore[arg-type]
    if kind == "arena":
        return ArenaView(symbol, **{f: values.get(f) for f in ARENA_FIELDS})  # type: ignore[arg-type]
    capacity = values["capacity"] or 0
    if values.get("depth") is not None:
        depth = values["depth"] or 0
    else:
        # Monotonic indices; a racy read can be briefly off by a few, hence the clamp.
        depth = (values.get("tail") or 0) - (values.get("head") or 0)
    return RingView(symbol, max(0, min(depth, capacity)), capacity, values.get("push_failures"), values.get("tail"))
