"""A watchpoint hit as text: the CLI's block per hit, the pane's log cells and backtrace.

Pure formatting of :class:`WatchHit` values (no I/O); target text (function and file names)
stays plain text here, the UI never parses it as markup.
"""

from __future__ import annotations

import os
import time

from hftmem_tui.sources.watchpoint import WatchHit, WatchSpec

__all__ = ["backtrace_lines", "first_hit_lines", "format_hit", "hit_clock", "log_value", "ms", "short_function", "short_where", "value_text"]


def ms(seconds: float | None) -> str:
    """``0.0042`` -> ``"4.2 ms"``; ``"?"`` when unknown."""
    return "?" if seconds is None else f"{seconds * 1e3:.1f} ms"


def value_text(b: bytes | None, spec: WatchSpec) -> str:
    """The watched bytes as a number: signed when the C type is, hex above 32 bits; ``"?"`` unknown."""
    if b is None:
        return "?"
    n = int.from_bytes(b, "little")
    signed = spec.type_name is not None and not spec.type_name.startswith(("unsigned", "uint", "char", "size_t"))
    if signed and spec.type_name and ("int" in spec.type_name or "long" in spec.type_name):
        s = int.from_bytes(b, "little", signed=True)
        return f"{s} ({n:#x})" if s < 0 else str(s)
    return str(n) if n < 1 << 32 else f"{n:#x}"


def hit_clock(t: float) -> str:
    """Wall-clock time of a hit, to the microsecond: ``"10:42:07.123456"``."""
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1e6) % 1000000:06d}"


def format_hit(hit: WatchHit, n: int, t0: float | None = None) -> list[str]:
    """One hit as CLI lines: number, time, tid, label, old -> new, location, indented call chain."""
    rel = f" (+{hit.time - t0:.3f} s)" if t0 is not None else ""
    lag = hit.extra.get("read_lag_s")
    after = ""
    if hit.new_read_after:
        after = f" (read {lag * 1e6:,.0f} us after the write)" if lag is not None else " (read after the write)"
    lines = [f"hit {n} at {hit_clock(hit.time)}{rel} tid {hit.tid} {hit.spec.label}: "
             f"{value_text(hit.old, hit.spec)} -> {value_text(hit.new, hit.spec)}{after}",
             f"  at {hit.location}" if hit.location else "  at ??"]
    lines += [f"    #{i} {f}" for i, f in enumerate(hit.backtrace)]
    return lines


def short_function(function: str) -> str:
    """``engine::run_producer(engine::Config const&)`` -> ``engine::run_producer`` (the log is narrow)."""
    depth, out = 0, []
    for ch in function:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out) or function


def short_where(hit: WatchHit) -> str:
    """The hit's location, narrow: ``engine::run_producer+0x4c engine.cpp:120`` (``Frame`` says it in full)."""
    f = hit.location
    if f is None:
        return "??"
    name = short_function(f.function) if f.function else f"{f.address:#x}"
    if f.function and f.offset is not None:
        name += f"+{f.offset:#x}"
    if f.file:
        name += f" {os.path.basename(f.file)}:{f.line}" if f.line else f" {os.path.basename(f.file)}"
    return name


def log_value(hit: WatchHit) -> str:
    """The log's ``old -> new`` cell; perf's value is read after the write, and says so."""
    value = f"{value_text(hit.old, hit.spec)} -> {value_text(hit.new, hit.spec)}"
    return value + " (read after)" if hit.new_read_after else value


def backtrace_lines(hit: WatchHit) -> list[str]:
    """The pane's detail of one hit: the CLI block, titled by backend, with the pause it caused."""
    lines = format_hit(hit, 0)
    lines[0] = lines[0].replace("hit 0 at", f"{hit.backend} hit at", 1)
    if hit.pause_s is not None:
        lines.append(f"  the writing thread was stopped {ms(hit.pause_s)} for this hit")
    return lines


def first_hit_lines(hit: WatchHit) -> list[str]:
    """The tour's watch result: the CLI block of the hit, plus the bytes as text when they are text."""
    lines = format_hit(hit, 1)
    if hit.new is not None and len(hit.new) > 1 and all(32 <= c < 127 or c == 0 for c in hit.new):
        text = hit.new.rstrip(b"\0").decode()
        lines[0] += f"  bytes {text!r}" if text else ""
    return lines
