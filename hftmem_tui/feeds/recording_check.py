"""Checking recording lines against the format before anything is built from them.

A recording is a file anyone can hand us: every line is bounded (length before parsing, nesting
depth before parsing, numbers while parsing: no NaN, no infinities, no absurd magnitudes) and
every field is type- and range-checked while its dataclass is built. What fails raises
BadRecord, whose message says which field and why, in one line of plain ASCII.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from functools import cache

MAX_LINE_BYTES = 16 << 20  # a 65,530-mapping table (the kernel's default cap) is about 10 MB
MAX_DEPTH = 16  # the format nests at most 5 levels (sample > mappings_delta > changed > row)
MAX_ITEMS = 1 << 20  # no list in the format is longer (mapping rows, threads)
MAX_TEXT = 1 << 16  # a path, a command line word, a note
INT_MIN, INT_MAX = -(1 << 63), 1 << 64
FLOAT_MAX = 1e18  # far above any count, size or time we record; 1e308 is damage
TIME_MAX = 1e10  # epoch seconds: the year 2286


class BadRecord(ValueError):
    """A line or field does not follow the recording format; the message is the reason."""


def what(v: object) -> str:
    """A short, safe description of a JSON value for a message (never the whole value)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f"a string ({ascii(v[:24])}{'...' if len(v) > 24 else ''})"
    if isinstance(v, (int, float)):
        s = repr(v)
        return f"the number {s[:24]}{'...' if len(s) > 24 else ''}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


# --------------------------------------------------------------------------- one line


def _constant(name: str):
    raise BadRecord(f"holds {name}, not a finite number")


def _float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v) or abs(v) > FLOAT_MAX:
        raise BadRecord(f"holds the number {text[:24]}, out of range")
    return v


def _int(text: str) -> int:
    if len(text) > 20:  # 2**64 has 20 digits: anything longer is damage (and slow to convert)
        raise BadRecord(f"holds a {len(text)}-digit integer, out of range")
    return int(text)


_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_PAIRS = bytes.maketrans(b"[]{}", b"()()")


def check_depth(raw: bytes) -> None:
    """Raise BadRecord if brackets nest deeper than MAX_DEPTH (or do not balance), in C-speed
    passes: strings dropped, brackets kept, innermost pairs removed once per level."""
    skeleton = _STRING.sub(b"", raw).translate(_PAIRS, _NOT_BRACKETS)
    for _level in range(MAX_DEPTH):
        if not skeleton:
            return
        shorter = skeleton.replace(b"()", b"")
        if len(shorter) == len(skeleton):
            break
        skeleton = shorter
    if skeleton:
        raise BadRecord(f"nests brackets more than {MAX_DEPTH} deep or leaves them unbalanced")


def parse_line(raw: bytes) -> object:
    """One line (bytes, without or with its newline) as a JSON value. Raises BadRecord."""
    if len(raw) > MAX_LINE_BYTES:
        raise BadRecord(f"is {len(raw)} bytes, over the {MAX_LINE_BYTES >> 20} MiB line limit")
    check_depth(raw)
    try:
        return json.loads(raw, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except BadRecord:
        raise
    except RecursionError:
        raise BadRecord("nests too deeply to read") from None
    except UnicodeDecodeError:
        raise BadRecord("is not UTF-8 text") from None
    except ValueError as e:
        raise BadRecord(f"is corrupt ({str(e).split(':')[0].lower()})") from None


# --------------------------------------------------------------------------- fields


def integer(v: object, where: str, lo: int = INT_MIN, hi: int = INT_MAX) -> int:
    """``v`` if it is an integer in [lo, hi]; raises BadRecord."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadRecord(f"{where} is {what(v)}, not an integer")
    if not lo <= v <= hi:
        raise BadRecord(f"{where} is {what(v)}, out of range")
    return v


def number(v: object, where: str, lo: float = -FLOAT_MAX, hi: float = FLOAT_MAX) -> float:
    """``v`` if it is a finite number in [lo, hi] (kept as written); raises BadRecord."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BadRecord(f"{where} is {what(v)}, not a number")
    if not (math.isfinite(v) and lo <= v <= hi):
        raise BadRecord(f"{where} is {what(v)}, out of range")
    return v


def text(v: object, where: str) -> str:
    if not isinstance(v, str):
        raise BadRecord(f"{where} is {what(v)}, not a string")
    if len(v) > MAX_TEXT:
        raise BadRecord(f"{where} is a {len(v)}-character string, over the limit")
    return v


def boolean(v: object, where: str) -> bool:
    if not isinstance(v, bool):
        raise BadRecord(f"{where} is {what(v)}, not true or false")
    return v


def obj(v: object, where: str) -> dict:
    if not isinstance(v, dict):
        raise BadRecord(f"{where} is {what(v)}, not an object")
    return v


def array(v: object, where: str, max_items: int = MAX_ITEMS) -> list:
    if not isinstance(v, list):
        raise BadRecord(f"{where} is {what(v)}, not a list")
    if len(v) > max_items:
        raise BadRecord(f"{where} has {len(v)} items, over the limit")
    return v


def optional(check, v: object, where: str, *args):
    """``check(v, where, *args)``, or None for a null or missing value."""
    return None if v is None else check(v, where, *args)


def texts(v: object, where: str) -> tuple[str, ...]:
    return tuple(text(x, f"{where}[{i}]") for i, x in enumerate(array(v, where)))


def numbers(v: object, where: str) -> dict[str, float]:
    """An object of name -> number (perf values, cost_ms)."""
    return {text(k, where): number(x, f"{where}.{k}") for k, x in obj(v, where).items()}


def value(hint: object, v: object, where: str) -> object:
    """``v`` checked against a dataclass field's type hint (int, float, str, bool, bytes,
    X | None, tuple[int, ...], frozenset[int])."""
    if hint is int:
        return integer(v, where)
    if hint is float:
        return number(v, where)
    if hint is str:
        return text(v, where)
    if hint is bool:
        return boolean(v, where)
    if hint is bytes:  # the engine's magic, written as ASCII text
        return text(v, where).encode("ascii", "replace")
    if isinstance(hint, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if v is None else value(inner[0], v, where)
    origin = typing.get_origin(hint)
    if origin in (tuple, frozenset):
        item = typing.get_args(hint)[0]
        return origin(value(item, x, f"{where}[{i}]") for i, x in enumerate(array(v, where)))
    raise BadRecord(f"{where}: no check for {hint}")  # a new field type: add its check here


@cache
def _hints(cls: type) -> tuple[tuple[str, object, bool], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name], f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
                 for f in dataclasses.fields(cls))


def build(cls: type, d: object, where: str, **given):
    """An instance of dataclass ``cls`` from the JSON object ``d``: every field type-checked,
    unknown keys ignored, missing fields with a default take it; ``given`` fields are not read
    from ``d``. Raises BadRecord naming the field."""
    d = obj(d, where)
    kw = dict(given)
    for name, hint, required in _hints(cls):
        if name in given:
            continue
        if name not in d:
            if required:
                raise BadRecord(f"{where} has no {name}")
            continue
        kw[name] = value(hint, d[name], f"{where}.{name}")
    return cls(**kw)
