"""The types of hftmem's command-line arguments: text in, a value or a one-line refusal out.

Each function is an argparse ``type=``: it returns the parsed value or raises
argparse.ArgumentTypeError with the message the user sees (``hftmem: argument ...: MESSAGE``).
Kept apart from cli.py so the parser reads as a list of commands and commands can reuse a
parser (``dump`` parses its ADDR|SYMBOL with :func:`parse_address`).
"""

from __future__ import annotations

import argparse
import re

from hftmem_tui.errors import SourceError
from hftmem_tui.sources.engine import check_scenario


def pid(text: str) -> int:
    """A process id: a positive decimal integer."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a pid: '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a pid: '{text}'")
    return value


def scenario(text: str) -> str:
    """One of the demo engine's scenario names."""
    try:
        return check_scenario(text)
    except SourceError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def speed(text: str) -> float:
    """A playback speed, 0.01..1000, with an optional x suffix (4, 0.5x)."""
    try:
        v = float(text.lower().rstrip("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a playback speed (e.g. 4 or 0.5)") from None
    if not 0.01 <= v <= 1000:
        raise argparse.ArgumentTypeError("playback speed must be between 0.01 and 1000")
    return v


def _number_of_seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: '{text}'") from None


def window(text: str) -> float:
    """The audit's history window: 0..3600 seconds."""
    value = _number_of_seconds(text)
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"window must be 0..3600 seconds, got '{text}'")
    return value


_ADDRESS_RE = re.compile(r"\s*(?:0[xX]([0-9a-fA-F]+)|([0-9]+))\s*", re.ASCII)


def parse_address(text: str) -> int | None:
    """0x-prefixed hex or plain decimal (ASCII digits only): an address; anything else, "-5"
    included, is a symbol expression (and refused by its guard with a reason): None."""
    m = _ADDRESS_RE.fullmatch(text)
    if m is None:
        return None
    return int(m.group(1), 16) if m.group(1) is not None else int(m.group(2), 10)


def length(text: str) -> int:
    """A byte count to read: 1..256 MiB, decimal or 0x hex."""
    n = parse_address(text)
    if n is None or not 0 < n <= 256 * 1024 * 1024:
        raise argparse.ArgumentTypeError(f"length must be 1..268435456 bytes, got '{text}'")
    return n


def positive_seconds(text: str) -> float:
    """An interval or duration: 0.05 s..30 days."""
    v = _number_of_seconds(text)
    if not 0.05 <= v <= 30 * 86400:
        raise argparse.ArgumentTypeError(f"seconds must be 0.05..2592000 (30 days), got '{text}'")
    return v


def count(text: str) -> int:
    """A count: a decimal integer >= 0."""
    try:
        v = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a count: '{text}'") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got '{text}'")
    return v


_SIZE_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def byte_size(text: str) -> int:
    """1048576, 64K, 100M, 2G (binary units); at least 4096."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in ("K", "M", "G") else ""
    try:
        v = int(float(t[: len(t) - len(unit)]) * _SIZE_SUFFIX[unit])
    except (ValueError, OverflowError):  # "abc", "nan", "inf"
        raise argparse.ArgumentTypeError(f"not a size: '{text}' (e.g. 1048576, 64K, 100M, 2G)") from None
    if v < 4096:
        raise argparse.ArgumentTypeError(f"size must be at least 4096 bytes, got '{text}'")
    return v


def listen(text: str) -> tuple[str, int]:
    """HOST:PORT, [V6]:PORT, or PORT alone (loopback). All interfaces must be named (0.0.0.0, [::])."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    elif not host:
        raise argparse.ArgumentTypeError(
            f"'{text}': name the address to listen on (127.0.0.1:{port}, or 0.0.0.0:{port} for every interface)")
    host = host.removeprefix("[").removesuffix("]")
    try:
        n = int(port, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: '{port}' in '{text}'") from None
    if not 0 < n < 65536:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {n}")
    return host, n


def hot_threads(text: str) -> list[int] | str:
    """TID,TID,... (positive thread ids) or the word auto."""
    if text == "auto":
        return "auto"
    try:
        tids = [int(t, 10) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hot takes TID,TID,... or auto, not '{text}'") from None
    if not tids or any(t <= 0 for t in tids):
        raise argparse.ArgumentTypeError(f"--hot takes TID,TID,... or auto, not '{text}'")
    return tids


def seconds(text: str) -> float:
    """A short duration: (0, 3600] seconds."""
    v = _number_of_seconds(text)
    if not 0 < v <= 3600:
        raise argparse.ArgumentTypeError(f"seconds must be in (0, 3600], got '{text}'")
    return v


def chapter(text: str) -> str:
    """A tour chapter's name (demo.chapters lists them)."""
    from hftmem_tui.demo.chapters import find_chapter  # only `demo` pays for loading the chapters

    try:
        return find_chapter(text).name
    except KeyError as e:
        raise argparse.ArgumentTypeError(e.args[0]) from None
