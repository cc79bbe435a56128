"""The types of hftmem's command-line arguments: text in, a value or a one-line refusal out.

Each function is an argparse ``type=``: it returns the parsed value or raises
argparse.ArgumentTypeError with the message the user sees (``hftmem: argument ...: MESSAGE``).
Kept apart from cli.py so the parser reads as a list of commands and commands can reuse a
parser (``dump`` parses its ADDR|SYMBOL with :func:`parse_address`).
"""

from __future__ import annotations

import argparse
import math
import re

from hftmem_tui.errors import SourceError
from hftmem_tui.sources.engine import check_scenario
from hftmem_tui.sources.layout import ADDRESS_MAX, InvalidExpression, parse_number, quoted_short


# pid_t's range: above the kernel's pid_max (at most 2^22) a pid is well formed and not there,
# which the command says (exit 1, "no process with pid N") like any other missing pid.
PID_MAX = (1 << 31) - 1
_PID_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_MAX_PATTERN = 256


def pid(text: str) -> int:
    """A process id: a decimal integer 1..2^31-1 (ASCII digits only)."""
    t = text.strip()
    if not _PID_RE.fullmatch(t) or len(t) > 11 or not 0 < int(t, 10) <= PID_MAX:
        raise argparse.ArgumentTypeError(f"not a pid: '{quoted_short(text)}'")
    return int(t, 10)


def target(text: str) -> int | str:
    """A PID, or a process name / pattern (a regular expression matched against the process name,
    as pgrep does) that the CLI resolves to one process when the command runs."""
    t = text.strip()
    if _PID_RE.fullmatch(t):  # digits (or -5, +0): a pid or nothing
        return pid(t)
    if not t or len(t) > _MAX_PATTERN or any(ord(c) < 32 or ord(c) == 127 for c in t):
        raise argparse.ArgumentTypeError(f"not a pid or a process name: '{quoted_short(text)}'")
    try:
        re.compile(t)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"not a pid, and not a valid name pattern: '{quoted_short(text)}' ({e})") from None
    return t


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
        raise argparse.ArgumentTypeError(f"'{quoted_short(text)}' is not a playback speed (e.g. 4 or 0.5)") from None
    if not math.isfinite(v) or not 0.01 <= v <= 1000:
        raise argparse.ArgumentTypeError("playback speed must be between 0.01 and 1000")
    return v


def finite(text: str, what: str = "a number") -> float:
    """A finite float (``nan``, ``inf``, ``1e999`` refused: no option means them)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: '{quoted_short(text)}'") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"not {what}: '{quoted_short(text)}' (must be a finite number)")
    return v


def _number_of_seconds(text: str) -> float:
    return finite(text, "a number of seconds")


def window(text: str) -> float:
    """The audit's history window: 0..3600 seconds."""
    value = _number_of_seconds(text)
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"window must be 0..3600 seconds, got '{quoted_short(text)}'")
    return value


def number(text: str, what: str = "address", limit: int = ADDRESS_MAX) -> int:
    """An unsigned number as gdb writes it (see :func:`layout.parse_number`). Raises
    argparse.ArgumentTypeError with the reason."""
    try:
        return parse_number(text, what, limit)
    except InvalidExpression as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def looks_numeric(text: str) -> bool:
    """Whether ``text`` is meant as a number (starts with a digit): symbols never do."""
    return text.strip()[:1].isdigit()


def parse_address(text: str) -> int | None:
    """An address (see :func:`number`), or None when ``text`` is not one: a symbol expression
    (its guard refuses it with a reason) or a malformed number (the argparse types below refuse
    those first, with the reason). Never raises."""
    try:
        return number(text) if looks_numeric(text) else None
    except argparse.ArgumentTypeError:
        return None


def address_or_symbol(text: str) -> str:
    """``dump``'s ADDR|SYMBOL: a number is checked here (exit 2), a symbol when it is resolved."""
    if looks_numeric(text):
        number(text)
    return text


def watch_target(text: str) -> str:
    """``watch``'s ADDR[:LEN]|SYMBOL[.field]: ADDR and LEN checked here and given on as hex."""
    if not looks_numeric(text):
        return text
    addr, sep, n = text.partition(":")
    address = number(addr)
    if not sep:
        return f"{address:#x}"
    return f"{address:#x}:{number(n, 'length'):#x}"  # 1, 2, 4 or 8: the watch says why when not


MAX_LENGTH = 256 * 1024 * 1024


def length(text: str) -> int:
    """A byte count to read: 1..256 MiB, decimal or 0x hex."""
    try:
        n = number(text, "length")
    except argparse.ArgumentTypeError:
        n = None
    if n is None or not 0 < n <= MAX_LENGTH:
        raise argparse.ArgumentTypeError(f"length must be 1..{MAX_LENGTH} bytes, got '{quoted_short(text)}'")
    return n


def positive_seconds(text: str) -> float:
    """An interval or duration: 0.05 s..30 days."""
    v = _number_of_seconds(text)
    if not 0.05 <= v <= 30 * 86400:
        raise argparse.ArgumentTypeError(f"seconds must be 0.05..2592000 (30 days), got '{quoted_short(text)}'")
    return v


def count(text: str, low: int = 0, high: int = 10**9) -> int:
    """A count: a decimal integer in low..high (default 0..10^9)."""
    t = text.strip()
    if not _PID_RE.fullmatch(t) or len(t) > 12:
        raise argparse.ArgumentTypeError(f"not a count: '{quoted_short(text)}'")
    v = int(t, 10)
    if v < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got '{quoted_short(text)}'")
    if v > high:
        raise argparse.ArgumentTypeError(f"must be <= {high}, got '{quoted_short(text)}'")
    return v


def hits(text: str) -> int:
    """``watch --count``: 1..10^9 hits."""
    return count(text, 1)


def rotations(text: str) -> int:
    """``record --rotate``: 0..1000 files kept."""
    return count(text, 0, 1000)


def every(text: str) -> int:
    """``--smaps-every``: 1..100000 samples."""
    return count(text, 1, 100_000)


def tick_rate(text: str) -> int:
    """``engine --tick-rate``: 1..10,000,000 ticks per second."""
    return count(text, 1, 10_000_000)


def max_rate(text: str) -> float:
    """``watch --max-rate``: hits/s above which a watchpoint is disarmed, 0 (no guard) or up to 10^7."""
    v = finite(text, "a rate in hits/s")
    if not 0 <= v <= 1e7:
        raise argparse.ArgumentTypeError(f"rate must be 0 (no guard) or up to 10000000 hits/s, got '{quoted_short(text)}'")
    return v


SIZE_MAX = 1 << 40
_SIZE_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def byte_size(text: str) -> int:
    """1048576, 64K, 100M, 2G (binary units); at least 4096."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    if not re.fullmatch(r"[0-9]{1,16}(\.[0-9]{1,6})?[KMG]?", t, re.ASCII):  # no nan, inf, 1e308, -5
        raise argparse.ArgumentTypeError(f"not a size: '{quoted_short(text)}' (e.g. 1048576, 64K, 100M, 2G)")
    unit = t[-1:] if t[-1:] in ("K", "M", "G") else ""
    try:
        v = int(float(t[: len(t) - len(unit)]) * _SIZE_SUFFIX[unit])
    except (ValueError, OverflowError):  # "abc", "nan", "inf"
        raise argparse.ArgumentTypeError(f"not a size: '{quoted_short(text)}' (e.g. 1048576, 64K, 100M, 2G)") from None
    if v < 4096:
        raise argparse.ArgumentTypeError(f"size must be at least 4096 bytes, got '{quoted_short(text)}'")
    if v > SIZE_MAX:
        raise argparse.ArgumentTypeError(f"size must be at most 1T (2^40 bytes), got '{quoted_short(text)}'")
    return v


def listen(text: str) -> tuple[str, int]:
    """HOST:PORT, [V6]:PORT, or PORT alone (loopback). All interfaces must be named (0.0.0.0, [::])."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    elif not host:
        raise argparse.ArgumentTypeError(
            f"'{quoted_short(text)}': name the address to listen on (127.0.0.1:{port}, or 0.0.0.0:{port} for every interface)")
    host = host.removeprefix("[").removesuffix("]")
    if not re.fullmatch(r"[0-9]{1,5}", port, re.ASCII):
        raise argparse.ArgumentTypeError(f"not a port: '{quoted_short(port)}' in '{quoted_short(text)}'")
    n = int(port, 10)
    if not 0 < n < 65536:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {n}")
    return host, n


def hot_threads(text: str) -> list[int] | str:
    """TID,TID,... (positive thread ids) or the word auto."""
    if text == "auto":
        return "auto"
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if not parts or not all(_PID_RE.fullmatch(t) and len(t) <= 11 for t in parts):
        raise argparse.ArgumentTypeError(f"--hot takes TID,TID,... or auto, not '{quoted_short(text)}'")
    tids = [int(t, 10) for t in parts]
    if any(not 0 < t <= PID_MAX for t in tids):
        raise argparse.ArgumentTypeError(f"--hot takes TID,TID,... or auto, not '{quoted_short(text)}'")
    return tids


def seconds(text: str) -> float:
    """A short duration: (0, 3600] seconds."""
    v = _number_of_seconds(text)
    if not 0 < v <= 3600:
        raise argparse.ArgumentTypeError(f"seconds must be in (0, 3600], got '{quoted_short(text)}'")
    return v


def chapter(text: str) -> str:
    """A tour chapter's name (demo.chapters lists them)."""
    from hftmem_tui.demo.chapters import find_chapter  # only `demo` pays for loading the chapters

    try:
        return find_chapter(text).name
    except KeyError as e:
        raise argparse.ArgumentTypeError(e.args[0]) from None
