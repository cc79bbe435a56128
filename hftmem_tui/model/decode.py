"""Raw bytes + a Layout -> field values. Pure: no process, no gdb, no I/O.

Decoding is BY NAME from the layout (offsets come from ``ptype/o``), so a reordered or
grown struct still decodes. Values are little-endian (x86-64 / aarch64 targets).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import functools
import re
import struct
from dataclasses import dataclass, fields

from hftmem_tui.engine_abi import SCENARIOS
from hftmem_tui.errors import NotAnEngine

if TYPE_CHECKING:  # types only: model imports no source at run time
    from hftmem_tui.sources.symbols import Field, Layout

__all__ = [
    "ENGINE_MAGIC",
    "ENGINE_STATS_SYMBOL",
    "SCENARIOS",
    "SUPPORTED_STATS_VERSIONS",
    "EngineStats",
    "decode",
    "decode_field",
    "decode_engine_stats",
    "is_signed_type",
]

# Bit i of EngineStats.scenarios is SCENARIOS[i]: one list, owned by the engine client.
ENGINE_MAGIC = b"HFTMEM01"
ENGINE_STATS_SYMBOL = "hftmem_engine_stats"
SUPPORTED_STATS_VERSIONS = (1,)

Value = int | float | bytes | list

_QUALIFIERS = re.compile(r"\b(?:const|volatile|struct|class|union|enum)\b")
_SIGNED = {
    "char", "signed char", "short", "short int", "signed short", "int", "signed", "signed int",
    "long", "long int", "signed long", "long long", "long long int", "signed long long",
    "int8_t", "int16_t", "int32_t", "int64_t", "ssize_t", "ptrdiff_t", "intptr_t", "intmax_t",
    "off_t", "time_t", "wchar_t", "__int128", "int_fast8_t", "int_fast16_t", "int_fast32_t",
    "int_fast64_t", "int_least8_t", "int_least16_t", "int_least32_t", "int_least64_t",
}  # fmt: skip
_BYTE_CHARS = {"char", "signed char", "unsigned char", "char8_t", "std::byte", "byte"}
_ATOMIC = re.compile(r"^(?:std::)?atomic<(.*)>$")


@functools.lru_cache(maxsize=1024)  # a stats block repeats a few type names thousands of times per read
def _base_type(type_name: str) -> str:
    t = _QUALIFIERS.sub(" ", type_name)
    t = " ".join(t.split())
    return t.removeprefix("std::") if t.startswith("std::") and "<" not in t else t


def is_signed_type(type_name: str) -> bool:
    """True for C/C++ signed integer type names (``int64_t``, ``long``, ``char`` on x86)."""
    t = _base_type(type_name)
    m = _ATOMIC.match(t)
    if m:
        return is_signed_type(m.group(1))
    return t in _SIGNED


def _scalar(raw: bytes, type_name: str) -> Value:
    t = _base_type(type_name)
    m = _ATOMIC.match(t)
    if m:
        t = _base_type(m.group(1))
    if t in ("double", "float", "long double") and len(raw) in (4, 8):
        return struct.unpack("<d" if len(raw) == 8 else "<f", raw)[0]
    if "*" in t or "(" in t:  # pointers, function pointers: an address
        return int.from_bytes(raw, "little")
    if len(raw) in (1, 2, 4, 8, 16):
        return int.from_bytes(raw, "little", signed=t in _SIGNED)
    return bytes(raw)  # a struct element or an odd-sized type: raw bytes


def _array(raw: bytes, elem: str, dims: tuple[int, ...]) -> Value:
    if len(dims) == 1 and _base_type(elem) in _BYTE_CHARS:
        return bytes(raw)
    step = len(raw) // dims[0] if dims[0] else 0
    if len(dims) == 1:
        return [_scalar(raw[i * step : (i + 1) * step], elem) for i in range(dims[0])]
    return [_array(raw[i * step : (i + 1) * step], elem, dims[1:]) for i in range(dims[0])]


def decode_field(f: Field, data: bytes) -> Value:
    """The value of one layout field in ``data`` (the bytes of the whole layout).

    Raises ValueError if ``data`` is too short for the field.
    """
    end = f.offset + f.size
    if f.is_bitfield:
        nbytes = ((f.bit_offset or 0) + (f.bit_size or 0) + 7) // 8
        end = f.offset + nbytes
    if end > len(data):
        raise ValueError(f"field '{f.path}' needs bytes {f.offset}..{end}, only {len(data)} given")
    if f.is_bitfield:
        bits = int.from_bytes(data[f.offset : end], "little") >> (f.bit_offset or 0)
        width = f.bit_size or 0
        value = bits & ((1 << width) - 1)
        if is_signed_type(f.elem_type) and width and value >> (width - 1):
            value -= 1 << width
        return value
    raw = data[f.offset : end]
    if f.dims:
        return _array(raw, f.elem_type, f.dims)
    return _scalar(raw, f.elem_type)


def decode(layout: Layout, data: bytes) -> dict[str, Value]:
    """Every leaf field of ``layout`` decoded from ``data``, keyed by dotted path.

    Integers are little-endian, signed or unsigned by type name; char arrays are bytes;
    other arrays are lists (nested for multi-dimensional ones); structs whose members
    are listed are not repeated (their members are). Fields beyond ``len(data)`` are
    skipped, so a short read still decodes what it covers.
    """
    out: dict[str, Value] = {}
    parents = {f.path for f in layout.fields if f.is_struct}
    has_children = {p for p in parents if any(g.path.startswith(p + ".") for g in layout.fields)}
    for f in layout.fields:
        if f.path in has_children:
            continue
        try:
            out[f.path] = decode_field(f, data)
        except ValueError:
            continue  # beyond the bytes we were given
    return out


# ------------------------------------------------------------------ engine stats


@dataclass(frozen=True)
class EngineStats:
    """The demo engine's stats block (struct EngineStats, global hftmem_engine_stats)."""

    magic: bytes
    version: int
    pid: int
    start_time_ns: int
    ticks: int
    messages: int
    scenarios: int  # bit set, bit i = SCENARIOS[i]
    pool_live: int
    pool_high_water: int
    pool_capacity: int
    pool_rejects: int
    pool_double_frees: int
    pool_poison_violations: int
    arena_used: int
    arena_high_water: int
    arena_capacity: int
    arena_resets: int
    arena_failed: int
    ring_depth: int
    ring_capacity: int
    ring_drops: int
    hot_path_allocs: int
    leaked_bytes: int
    corrupted_orders: int
    frag_live_bytes: int
    ring_ns_per_msg: int
    msgs_per_sec: int
    window_index: int
    last_max_gap_ns: int
    last_p999_gap_ns: int
    last_iterations: int
    max_gap_hist: tuple[int, ...]
    p999_gap_hist: tuple[int, ...]

    @property
    def active_scenarios(self) -> tuple[str, ...]:
        """Names of the scenarios whose bit is set, in SCENARIOS order."""
        return tuple(name for i, name in enumerate(SCENARIOS) if self.scenarios >> i & 1)


def decode_engine_stats(layout: Layout, data: bytes) -> EngineStats:
    """Decode the engine's stats block by field name.

    Raises NotAnEngine when the magic is not ``HFTMEM01``, the version is unknown, or
    the layout lacks a field the view needs (not the demo engine's struct).
    """
    magic_field = layout.get("magic")
    if magic_field is None:
        raise NotAnEngine(f"{layout.type_name} has no 'magic' field: not the hftmem engine stats block")
    magic = bytes(data[magic_field.offset : magic_field.offset + 8])
    if magic != ENGINE_MAGIC:
        raise NotAnEngine(f"stats block magic is {magic!r}, expected {ENGINE_MAGIC!r}: not a hftmem engine")
    values = decode(layout, data)
    version = values.get("version")
    if version not in SUPPORTED_STATS_VERSIONS:
        raise NotAnEngine(
            f"stats block version {version} is not supported (this hftmem reads version "
            f"{', '.join(map(str, SUPPORTED_STATS_VERSIONS))})"
        )
    kwargs: dict[str, object] = {}
    for spec in fields(EngineStats):
        if spec.name == "magic":
            kwargs["magic"] = magic
            continue
        if spec.name not in values:
            raise NotAnEngine(f"stats block has no field '{spec.name}' (or it lies beyond the bytes read)")
        value = values[spec.name]
        if spec.name.endswith("_hist"):
            if not isinstance(value, list):
                raise NotAnEngine(f"stats field '{spec.name}' is not an array")
            value = tuple(value)
        elif not isinstance(value, int):
            raise NotAnEngine(f"stats field '{spec.name}' is not an integer")
        kwargs[spec.name] = value
    return EngineStats(**kwargs)  # type: ignore[arg-type]
