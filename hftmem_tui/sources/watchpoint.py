"""What a hardware watchpoint watches, and what one hit looks like: shared by every backend.

Two backends implement watchpoints (see DESIGN.md): perf hardware-breakpoint events (no
ptrace, the engine never stops) and a gdb/MI session (ptrace: the engine stops at the write,
for "stop and inspect"). Both take a :class:`WatchSpec` built here and yield :class:`WatchHit`
objects, so the CLI and the TUI do not care which one ran.

x86-64 limits are made explicit here, before anything touches the target: 4 debug registers,
each covering 1, 2, 4 or 8 bytes aligned to its length. A request outside them is refused with
a clear reason, never silently turned into a software watchpoint (which single-steps the
target, a thousandfold slowdown).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from hftmem_tui.errors import SourceError
from hftmem_tui.sources.layout import parse_number
from hftmem_tui.sources.symbols import InvalidExpression, SymbolTable, check_symbol_expr

__all__ = [
    "ACCESS_KINDS",
    "DEBUG_REGISTERS",
    "HW_LENGTHS",
    "WatchLimitError",
    "WatchSpec",
    "WatchHit",
    "Frame",
    "parse_target",
    "resolve_target",
    "check_budget",
    "HotField",
    "HitRateGuard",
]

DEBUG_REGISTERS = 4  # x86-64 DR0..DR3
HW_LENGTHS = (1, 2, 4, 8)  # bytes one debug register can cover, aligned to the length
ACCESS_KINDS = ("write", "read", "rw")



class WatchLimitError(SourceError, ValueError):
    """The request does not fit the hardware: unaligned, too long, or no debug register left."""


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """One hardware watchpoint: ``length`` bytes at runtime ``address``, aligned, 1/2/4/8."""

    address: int
    length: int
    access: str  # "write" | "read" | "rw"
    label: str  # what the user typed, resolved: "hftmem_last_order.price" or "0x7f..:8"
    type_name: str | None = None  # C type when known (from debug info), for value display

    def __post_init__(self) -> None:
        if self.access not in ACCESS_KINDS:
            raise WatchLimitError(f"access must be one of {', '.join(ACCESS_KINDS)}, not {self.access!r}")
        check_hw_range(self.address, self.length, self.label)


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a hit's backtrace."""

    address: int
    function: str | None  # "Engine::on_message" or None when unknown
    offset: int | None = None  # bytes into function, when known
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.function or "??"
        if self.offset is not None and self.function:
            where += f"+{self.offset:#x}"
        if self.file:
            where += f" at {self.file}:{self.line}" if self.line else f" at {self.file}"
        return f"{self.address:#x} {where}"


@dataclass(frozen=True, slots=True)
class WatchHit:
    """One trigger of a watchpoint, as a backend observed it."""

    time: float  # time.time() when the backend saw it
    spec: WatchSpec
    tid: int | None
    old: bytes | None  # value before the access, when the backend knows it
    new: bytes | None  # value after the access
    new_read_after: bool  # True: ``new`` was read zero-stop shortly *after* the write, not at it
    location: Frame | None  # the accessing instruction (the one after it for x86 data breakpoints)
    backtrace: tuple[Frame, ...] = ()
    pause_s: float | None = None  # how long the target was stopped for this hit (gdb), None = not stopped
    backend: str = ""  # "perf" | "gdb"
    extra: dict = field(default_factory=dict, compare=False)


def check_hw_range(address: int, length: int, label: str = "") -> None:
    """Refuse what one x86 debug register cannot watch, with the reason and a fix."""
    what = f" for {label}" if label else ""
    if length not in HW_LENGTHS:
        raise WatchLimitError(
            f"cannot watch {length} bytes{what}: a hardware watchpoint covers 1, 2, 4 or 8 bytes "
            f"(watch a field, or give ADDR:LEN with LEN in 1/2/4/8)"
        )
    if address % length:
        raise WatchLimitError(
            f"cannot watch {length} bytes at {address:#x}{what}: not aligned to {length} "
            f"(x86 debug registers need an address that is a multiple of the length)"
        )
    if address <= 0:
        raise WatchLimitError(f"cannot watch address {address:#x}{what}")


def check_budget(in_use: int, wanted: int = 1) -> None:
    """Refuse a watchpoint beyond the 4 debug registers (the UI shows used/4)."""
    if in_use + wanted > DEBUG_REGISTERS:
        raise WatchLimitError(
            f"all {DEBUG_REGISTERS} x86 debug registers are in use ({in_use}/{DEBUG_REGISTERS}): "
            f"disarm a watchpoint first"
        )


def parse_target(text: str) -> tuple[str, int | None, int | None]:
    """Split a user's target: ``("expr", None, None)`` for ``SYMBOL[.field]``, or
    ``("", address, length|None)`` for ``ADDR[:LEN]``. Hostile text raises InvalidExpression
    (assignments, calls, ``$reg``... never reach gdb)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidExpression("empty watch target")
    if text.strip()[:1].isdigit():  # a number: ADDR[:LEN], as strict as the CLI (no octal guesses)
        addr, sep, n = text.strip().partition(":")
        return "", parse_number(addr), (parse_number(n, "length") if sep else None)
    check_symbol_expr(text)  # raises with the reason
    return text.strip(), None, None


def resolve_target(pid: int, text: str, access: str = "write", *, table: SymbolTable | None = None,
                   length: int | None = None) -> WatchSpec:
    """Turn ``SYMBOL[.field]`` or ``ADDR[:LEN]`` into a checked WatchSpec for ``pid``.

    Symbols are resolved on the executable file (no ptrace) and relocated with the load base.
    A field or symbol wider than 8 bytes is refused unless ``length`` narrows it (then the first
    ``length`` bytes are watched). Raises InvalidExpression, SymbolNotFound, NoDebugInfo,
    WatchLimitError, NoSuchProcess, AccessDenied, ToolMissing.
    """
    expr, address, addr_len = parse_target(text)
    if not expr:
        n = addr_len if addr_len is not None else (length if length is not None else 8)
        return WatchSpec(address, n, access, f"{address:#x}:{n}")
    table = table or SymbolTable.for_pid(pid)
    resolved = table.resolve_expr(expr)
    runtime = table.runtime_address(resolved, pid)
    n = length if length is not None else resolved.size
    if length is None and resolved.size not in HW_LENGTHS:
        raise WatchLimitError(
            f"{expr} is {resolved.size} bytes ({resolved.type_name or 'no type'}): a hardware watchpoint "
            f"covers 1, 2, 4 or 8 aligned bytes; watch one of its fields instead"
        )
    type_name = resolved.type_name if n == resolved.size else None
    return WatchSpec(runtime, n, access, expr, type_name)


class HotField(SourceError):
    """A hit-rate guard disarmed a watchpoint: the field is written too often to watch cheaply."""


class HitRateGuard:
    """The one hit-rate guard of every watch backend: trips once when hits come faster than ``limit``.

    Two ways to feed it, one per kind of backend: :meth:`hit` for each hit seen one by one (gdb
    stops: trips at more than ``limit`` hits in the last ``window_s``), :meth:`observe` with a
    cumulative count (perf: the kernel's count, which includes hits whose samples were lost, so a
    hot field cannot hide by overflowing the ring). ``limit`` 0 or None: never trips. The
    backend disarms and words the reason; the guard only measures. Thread-safe.
    """

    def __init__(self, limit: float | None, *, window_s: float = 1.0, started: float = 0.0) -> None:
        self.limit = float(limit or 0.0)
        self.window_s = window_s
        self.started = started  # monotonic time counting began (observe: the first window is since then)
        self.tripped = False
        self.rate = 0.0  # hits/s last measured
        self._marks: deque[tuple[float, float]] = deque()  # observe: (time, cumulative count)
        self._arrivals: deque[float] = deque()  # hit: arrival times within the window
        self._lock = threading.Lock()

    def restart(self, started: float) -> None:
        """Count from ``started`` again (perf: the moment the breakpoints were enabled)."""
        with self._lock:
            self.started = started
            self._marks.clear()
            self._arrivals.clear()

    def hit(self, now: float) -> bool:
        """One hit at ``now``; True when this hit trips the guard (more than ``limit`` in the window)."""
        with self._lock:
            self._arrivals.append(now)
            while self._arrivals and self._arrivals[0] < now - self.window_s:
                self._arrivals.popleft()
            self.rate = len(self._arrivals) / self.window_s
            return self._trip(len(self._arrivals) > self.limit)

    def in_window(self) -> int:
        """Hits seen one by one (:meth:`hit`) within the last window."""
        return len(self._arrivals)

    def measure(self, now: float, total: float) -> float:
        """Hits/s from a cumulative ``total``: since ``started`` for the first window, then over the last
        window (so a field that turns hot later is seen too). Does not trip."""
        with self._lock:
            elapsed = max(now - self.started, 1e-3)
            self._marks.append((now, total))
            while len(self._marks) > 2 and self._marks[1][0] <= now - self.window_s:
                self._marks.popleft()
            if elapsed < self.window_s:
                self.rate = total / elapsed
            else:
                t0, c0 = self._marks[0]
                self.rate = (total - c0) / (now - t0) if now - t0 >= self.window_s / 2 else 0.0
            return self.rate

    def observe(self, now: float, total: float, *, settle_s: float = 0.02) -> bool:
        """Measure like :meth:`measure`; True when the rate first goes above ``limit`` (not in the first
        ``settle_s``: a rate over a few ms means nothing)."""
        if self.tripped or not self.limit or now - self.started < settle_s:
            return False
        rate = self.measure(now, total)
        with self._lock:
            return self._trip(rate > self.limit)

    def _trip(self, over: bool) -> bool:
        if self.tripped or not self.limit or not over:
            return False
        self.tripped = True
        return True
