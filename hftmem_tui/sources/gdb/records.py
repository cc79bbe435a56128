"""gdb/MI records of an attached session, read: thread states, stops, and watchpoint hits.

Pure: no gdb, no process. TargetThreads follows gdb's async records (``*stopped``,
``*running``, ``=thread-created``, ...); the functions turn a ``*stopped`` payload and the
answers about it into a WatchHit, and a hit's raw gdb frames into symbolised Frames.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from hftmem_tui.errors import SourceError
from hftmem_tui.sources.watchpoint import Frame, WatchHit, WatchSpec

if TYPE_CHECKING:
    from hftmem_tui.sources.codemap import CodeMap

__all__ = ["HIT_REASONS", "HW_KINDS", "TargetThreads", "breakpoint_type", "is_hit", "lwps_of", "symbolised",
           "value_bytes", "watch_hit", "watch_number", "watchpoint_number"]

HIT_REASONS = ("watchpoint-trigger", "read-watchpoint-trigger", "access-watchpoint-trigger")
HW_KINDS = ("hw watchpoint", "read watchpoint", "acc watchpoint")  # gdb's types of hardware watchpoints
_LWP_RE = re.compile(r"\b(?:LWP|process)\s+(\d+)")
_WPT_KEYS = ("wpt", "hw-awpt", "hw-rwpt")

Stop = tuple[float, dict]  # (monotonic when read, *stopped payload)


class TargetThreads:
    """What gdb's async records said about the target: its threads (gdb id -> LWP, None until
    known), which of them are stopped or running, the stops not handled yet, and its exit."""

    def __init__(self) -> None:
        self.threads: dict[str, int | None] = {}
        self.stopped: set[str] = set()
        self.running: set[str] = set()
        self.stops: deque[Stop] = deque()
        self.exit_code: str | None = None  # set when the target exited

    def apply(self, rec: dict) -> bool:
        """Take one async record into account; True when it queued a stop."""
        if rec.get("type") != "notify":
            return False
        msg, p = rec.get("message"), rec.get("payload") or {}
        if msg == "stopped":
            self._stopped(p)
            return True
        if msg == "running":
            tid = p.get("thread-id")
            if tid == "all":
                self.stopped.clear()
                self.running.update(self.threads)
            else:
                self.stopped.discard(tid)
                self.running.add(tid)
        elif msg == "thread-created":
            self.threads.setdefault(p.get("id"), None)
        elif msg == "thread-exited":
            self.threads.pop(p.get("id"), None)
            self.stopped.discard(p.get("id"))
            self.running.discard(p.get("id"))
        elif msg == "thread-group-exited":
            self.exit_code = str(p.get("exit-code", "0"))
        return False

    def _stopped(self, p: dict) -> None:
        if p.get("reason", "").startswith("exited"):
            self.exit_code = str(p.get("exit-code", p.get("signal-name", "0")))
        threads = p.get("stopped-threads")
        if isinstance(threads, list):
            self.stopped.update(threads)
            self.running.difference_update(threads)
        elif p.get("thread-id"):
            self.stopped.add(p["thread-id"])
            self.running.discard(p["thread-id"])
        self.stops.append((time.monotonic(), p))

    def keep_stops(self, keep: Callable[[dict], bool]) -> None:
        """Drop the queued stops whose payload ``keep`` rejects (stops we caused ourselves)."""
        self.stops = deque(s for s in self.stops if keep(s[1]))

    def learn_lwps(self, payload: dict | None) -> None:
        """Record the LWPs of a ``-thread-info`` answer."""
        self.threads.update(lwps_of(payload))


def lwps_of(payload: dict | None) -> dict[str, int | None]:
    """gdb thread id -> LWP from a ``-thread-info`` answer (None where gdb names none)."""
    out: dict[str, int | None] = {}
    for t in (payload or {}).get("threads", []):
        m = _LWP_RE.search(t.get("target-id", ""))
        out[t.get("id")] = int(m.group(1)) if m else None
    return out


def _wpt(stop: dict) -> dict:
    return next((stop[k] for k in _WPT_KEYS if stop.get(k)), {})


def watch_number(stop: dict) -> int:
    """The watchpoint number a ``*stopped`` payload names, 0 if none."""
    return int(_wpt(stop).get("number", 0))


def is_hit(stop: dict) -> bool:
    """Whether a ``*stopped`` payload is a watchpoint trigger."""
    return stop.get("reason") in HIT_REASONS


def watchpoint_number(payload: dict | None) -> int:
    """The number of the watchpoint a ``-break-watch`` answer created, 0 if none."""
    body = next((v for k, v in (payload or {}).items() if k in ("wpt", "hw-rwpt", "hw-awpt")), {})
    return int(body.get("number", 0))


def breakpoint_type(payload: dict | None) -> str:
    """gdb's type of the breakpoint a ``-break-info N`` answer describes ("" if none)."""
    rows = (payload or {}).get("BreakpointTable", {}).get("body", [])
    return rows[0].get("type", "") if rows else ""


def value_bytes(text: str | None, length: int) -> bytes | None:
    """gdb's printed value of our ``unsigned`` watch expression (``"42"``, ``"65 'A'"``) as bytes."""
    m = re.match(r"\s*(\d+)", text or "")
    if not m or int(m.group(1)) >= 1 << (8 * length):
        return None
    return int(m.group(1)).to_bytes(length, "little")


def watch_hit(t_stop: float, stop: dict, spec: WatchSpec, *, lwp: int | None, last: bytes | None,
              new: bytes | None, pause: float | None, stack: list[dict]) -> WatchHit:
    """The WatchHit of one ``*stopped`` watchpoint trigger, not symbolised yet (see symbolised).

    ``last``: the value we saw before (gdb's own old value wins: it is exact); ``new``: read
    while the thread was stopped at the write; ``pause``: None while the thread stays stopped.
    """
    value = stop.get("value") or {}
    old = value_bytes(value.get("old"), spec.length) or last
    return WatchHit(
        time=time.time() - (time.monotonic() - t_stop),
        spec=spec, tid=lwp, old=old, new=new, new_read_after=False,
        location=None, backtrace=(), pause_s=pause, backend="gdb",
        extra={"gdb_thread": stop.get("thread-id", ""), "gdb_old": value.get("old"),
               "gdb_new": value.get("new", value.get("value")), "stopped": pause is None,
               "gdb_frames": [stop.get("frame") or {}] + stack},
    )  # fmt: skip


def symbolised(hit: WatchHit, code: CodeMap | None) -> WatchHit:
    """``hit`` with location and backtrace from its raw gdb frames (by ``code`` when given,
    else gdb's own names). Never raises for frames it cannot name."""
    frames = hit.extra.pop("gdb_frames", None)
    if frames is None:
        return hit
    location, backtrace = _frames(frames[0], frames[1:], code)
    return dataclasses.replace(hit, location=location, backtrace=backtrace)


def _frames(top: dict, stack: list[dict], code: CodeMap | None) -> tuple[Frame | None, tuple[Frame, ...]]:
    addrs: list[int] = []
    for f in ([top] if top else []) + list(stack):
        with contextlib.suppress(KeyError, ValueError, TypeError):
            a = int(f["addr"], 16)
            if a and (not addrs or addrs[-1] != a):  # inlined frames share their caller's pc
                addrs.append(a)
    if not addrs:
        return None, ()
    if code is not None:
        with contextlib.suppress(SourceError):
            return code.hit_frames(addrs[0], addrs[1:])
    gdb_frames = tuple(Frame(int(f["addr"], 16), f.get("func"), None, f.get("fullname") or f.get("file"),
                             int(f["line"]) if f.get("line") else None) for f in stack if f.get("addr"))
    return (gdb_frames[0] if gdb_frames else Frame(addrs[0], None)), gdb_frames
