"""Allocator globals of any engine, described in a TOML file: the same gauges, no recompiling.

    # allocators.toml
    [[allocator]]
    symbol = "g_order_pool"        # a global (namespaces allowed: "engine::g_pool")
    kind = "pool"                  # pool | arena | ring
    live = "used_count"            # view counter = member path ("stats.live" for nested members)
    capacity = 4096                # ... or a constant (a template parameter has no storage)
    rejects = { member = "fails", scale = 1 }
    units = "orders"               # optional: what one unit of live/capacity is, for display

Required counters: pool live + capacity; arena used + capacity; ring capacity and either depth
or head + tail. Anything else a kind knows (see VIEW_FIELDS) is optional and shows as absent.
Every error names the file and line: ``allocators.toml:7: unknown kind 'heap' (pool, arena, ring)``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from hftmem_tui.model.allocators import KINDS, REQUIRED, VIEW_FIELDS, FieldSpec, builtin_fields
from hftmem_tui.errors import ConfigError

__all__ = ["AllocatorSpec", "load_allocators", "parse_allocators", "specs_for"]

_SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*$")
_MEMBER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
_META = ("symbol", "kind", "units")


@dataclass(frozen=True, slots=True)
class AllocatorSpec:
    """One allocator global and how its counters map onto a PoolView / ArenaView / RingView."""

    symbol: str
    kind: str
    fields: tuple[tuple[str, FieldSpec], ...]  # (view field, spec), in the order written
    units: str | None = None
    line: int = 0  # where the [[allocator]] table starts (0: not from a file)

    @property
    def field_map(self) -> dict[str, FieldSpec]:
        return dict(self.fields)


def specs_for(pairs) -> tuple[AllocatorSpec, ...]:
    """Specs for (symbol, kind) pairs using hftmem's own member names (the demo engine)."""
    return tuple(AllocatorSpec(sym, kind, tuple(builtin_fields(kind).items())) for sym, kind in pairs)


class _Lines:
    """Line numbers for the tables and keys of a TOML text (tomllib gives values only)."""

    _HEADER = re.compile(r"^\s*\[\[\s*allocator\s*\]\]\s*(?:#.*)?$")
    _ANY_HEADER = re.compile(r"^\s*\[")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.starts = [i + 1 for i, line in enumerate(self.lines) if self._HEADER.match(line)]

    def table(self, index: int) -> int:
        return self.starts[index] if index < len(self.starts) else 0

    def key(self, index: int, key: str) -> int:
        """Line of ``key = ...`` inside the index-th [[allocator]] table (the table's line if unseen)."""
        start = self.table(index)
        if not start:
            return 0
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=|^\s*\"{re.escape(key)}\"\s*=")
        for number in range(start + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            if self._ANY_HEADER.match(line):
                break
            if pattern.match(line):
                return number
        return start


def _error(source: str, line: int, message: str) -> ConfigError:
    return ConfigError(f"{source}:{line}: {message}" if line else f"{source}: {message}")


def _field(source: str, line: int, kind: str, view: str, value: object) -> FieldSpec:
    if isinstance(value, bool):
        raise _error(source, line, f"'{view}' must be a member name, a number or {{ member = ..., scale = ... }}, not true/false")
    if isinstance(value, int):
        if value < 0:
            raise _error(source, line, f"'{view}' = {value}: a constant counter cannot be negative")
        return FieldSpec(constant=value)
    if isinstance(value, str):
        if not _MEMBER.match(value):
            raise _error(source, line, f"'{view}' = {value!r} is not a member path (name or name.sub)")
        return FieldSpec(member=value)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"member", "constant", "scale"})
        if unknown:
            raise _error(source, line, f"'{view}': unknown key '{unknown[0]}' (member, constant, scale)")
        if ("member" in value) == ("constant" in value):
            raise _error(source, line, f"'{view}': give exactly one of member or constant")
        scale = value.get("scale", 1)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise _error(source, line, f"'{view}': scale must be a positive number, got {scale!r}")
        base = _field(source, line, kind, view, value.get("member", value.get("constant")))
        return FieldSpec(base.member, base.constant, scale)
    raise _error(source, line, f"'{view}' must be a member name, a number or {{ member = ..., scale = ... }}")


def parse_allocators(text: str, source: str = "<allocators>") -> tuple[AllocatorSpec, ...]:
    """Parse and validate an allocators TOML text. Raises ConfigError naming ``source:line``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise _error(source, int(m.group(1)) if m else 0, f"not valid TOML: {msg}") from None
    lines = _Lines(text)
    unknown_top = sorted(set(doc) - {"allocator"})
    if unknown_top:
        raise _error(source, 0, f"unknown top-level key '{unknown_top[0]}': describe each allocator in an [[allocator]] table")
    tables = doc.get("allocator", [])
    if not isinstance(tables, list) or not tables:
        raise _error(source, 0, "no [[allocator]] table: nothing to show")
    specs: list[AllocatorSpec] = []
    seen: dict[str, int] = {}
    for i, table in enumerate(tables):
        where = lines.table(i)
        symbol = table.get("symbol")
        if not isinstance(symbol, str) or not _SYMBOL.match(symbol.strip()):
            got = f" (got {symbol!r})" if symbol is not None else ""
            raise _error(source, lines.key(i, "symbol"), f"each allocator needs symbol = \"global_name\"{got}")
        symbol = symbol.strip()
        if symbol in seen:
            raise _error(source, where, f"'{symbol}' is already described at line {seen[symbol]}")
        seen[symbol] = where
        kind = table.get("kind")
        if kind not in KINDS:
            raise _error(source, lines.key(i, "kind"), f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
        units = table.get("units")
        if units is not None and not isinstance(units, str):
            raise _error(source, lines.key(i, "units"), "units must be a string (\"bytes\", \"orders\")")
        fields: list[tuple[str, FieldSpec]] = []
        for key, value in table.items():
            if key in _META:
                continue
            if key not in VIEW_FIELDS[kind]:
                raise _error(source, lines.key(i, key),
                             f"unknown key '{key}' for a {kind} (known: {', '.join(VIEW_FIELDS[kind])})")
            fields.append((key, _field(source, lines.key(i, key), kind, key, value)))
        named = {k for k, _ in fields}
        missing = [k for k in REQUIRED[kind] if k not in named]
        if kind == "ring" and "depth" not in named and not {"head", "tail"} <= named:
            missing.append("depth (or head and tail)")
        if missing:
            raise _error(source, where, f"{kind} '{symbol}' needs {', '.join(missing)}")
        specs.append(AllocatorSpec(symbol, kind, tuple(fields), units, where))
    return tuple(specs)


def load_allocators(path: str | Path) -> tuple[AllocatorSpec, ...]:
    """Read and validate an allocators TOML file. Raises ConfigError (one line, with file:line)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a TOML file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror or e}") from None
    return parse_allocators(text, str(path))
