"""What the watch controller's threads report; the caller hands each back to the controller.

Plain values, safe to pass between threads (the UI wraps each in a Textual message).
"""

from __future__ import annotations

from dataclasses import dataclass

from hftmem_tui.sources.watchpoint import WatchHit, WatchSpec

__all__ = ["Armed", "Disarmed", "GdbChanged", "HitsSeen", "Resolved", "WatchEvent"]


@dataclass(frozen=True, slots=True)
class Resolved:
    """A target resolved to a spec (``error`` None), or the reason it could not be."""

    wid: int
    spec: WatchSpec | None
    backend: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Armed:
    """A watchpoint is armed; ``info`` says how (perf on N threads, or gdb)."""

    wid: int
    info: str
    events: int = 0
    cost_per_hit_s: float | None = None


@dataclass(frozen=True, slots=True)
class HitsSeen:
    """Hits of one watchpoint, batched (at most ~10 a second, whatever the hit rate)."""

    wid: int
    hits: tuple[WatchHit, ...]
    counted: int | None = None  # perf: the kernel's count (lost samples included)
    rate_hz: float | None = None


@dataclass(frozen=True, slots=True)
class Disarmed:
    """A watchpoint is gone: by the user (reason None), the guard, a failure or the target exiting."""

    wid: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class GdbChanged:
    """gdb attached, failed, or detached (``detached`` True, the text gives the session's totals)."""

    detached: bool
    text: str


WatchEvent = Resolved | Armed | HitsSeen | Disarmed | GdbChanged
