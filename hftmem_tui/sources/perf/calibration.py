"""What one perf event costs the target on this machine, measured on ourselves and cached per boot.

Two costs, both shown to the user before and while they pay them: a sampled hardware-breakpoint
hit (watchpoints) and a counted uprobe call (allocation probes). Each is measured on hftmem's own
process (the same trap the target pays) the first time it is asked for in a boot; one cache file
keyed by the boot id holds both, so a reboot (another kernel, other mitigations) measures again.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from hftmem_tui.errors import ProbeError, SourceError
from hftmem_tui.sources import procfs
from hftmem_tui.sources.codemap import read_exec_mappings
from hftmem_tui.sources.paths import cache_root
from hftmem_tui.sources.perf import uprobes
from hftmem_tui.sources.perf.abi import (
    HW_BREAKPOINT_W, IOC_DISABLE, IOC_ENABLE, Ring, breakpoint_attr, ioctl, map_ring, perf_event_open, read_count,
)

__all__ = ["cache_path", "cost_per_call", "cost_per_hit"]

HIT = "breakpoint_hit_s"
CALL = "uprobe_call_s"

_MEMO: dict[tuple[str, str], float] = {}  # (boot id, cost) -> seconds: one file read per process


def cache_path() -> Path:
    """The cost cache file: ``<cache_root>/perf-cost.json``, ``{"boot_id": ..., "costs": {name: s}}``."""
    return cache_root() / "perf-cost.json"


def _load(boot: str) -> dict[str, float]:
    try:
        data = json.loads(cache_path().read_text())
        if data.get("boot_id") == boot:
            return {k: float(v) for k, v in data["costs"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return {}


def _store(boot: str, name: str, cost: float) -> None:
    costs = _load(boot)
    costs[name] = cost
    path = cache_path()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"boot_id": boot, "costs": costs}))
        os.replace(tmp, path)  # another hftmem reading at the same time sees the old file or the new one
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()  # read-only home: measure again next time


def _cached(name: str, measure: Callable[[], float], errors: tuple[type[BaseException], ...],
            refresh: bool) -> float | None:
    boot = procfs.boot_id()
    if not refresh:
        if (boot, name) in _MEMO:
            return _MEMO[(boot, name)]
        stored = _load(boot).get(name)
        if stored is not None:
            _MEMO[(boot, name)] = stored
            return stored
    try:
        cost = measure()
    except errors:
        return None
    _MEMO[(boot, name)] = cost
    _store(boot, name, cost)
    return cost


# ------------------------------------------------------------------ breakpoint hits

def _measure_hit(writes: int = 2000, rounds: int = 3) -> float:
    """Seconds a sampled breakpoint hit adds to the writing thread, measured on ourselves.

    We watch a buffer of our own and time ``writes`` stores to it, watched and unwatched; the
    difference per write is the trap + sample + wakeup path the target pays on each hit.
    """
    buf = ctypes.create_string_buffer(64)
    addr = (ctypes.addressof(buf) + 7) & ~7
    memset = ctypes.memset

    def loop() -> float:
        t = time.perf_counter()
        for _ in range(writes):
            memset(addr, 1, 8)
        return time.perf_counter() - t

    fd = perf_event_open(breakpoint_attr(addr, 8, HW_BREAKPOINT_W, inherit=False), 0, -1)
    try:
        ring = map_ring(fd)
        try:
            best = float("inf")
            for _ in range(rounds):
                base = loop()
                ioctl(fd, IOC_ENABLE, 0)
                watched = loop()
                ioctl(fd, IOC_DISABLE, 0)
                Ring(ring).drain(lambda *_: None)
                best = min(best, max(0.0, watched - base) / writes)
            return best
        finally:
            ring.close()
    finally:
        os.close(fd)


def cost_per_hit(*, refresh: bool = False) -> float | None:
    """Measured cost of one sampled breakpoint hit on this machine, in seconds (cached per boot).

    None when breakpoints cannot be armed here at all. ``refresh`` measures again. Never raises.
    """
    return _cached(HIT, _measure_hit, (OSError,), refresh)


# ------------------------------------------------------------------ uprobe calls

def _measure_call(calls: int = 4000, rounds: int = 3) -> float:
    """Seconds one probed call adds to the caller: a probe on our own libc malloc, timed with
    and without its counting event (the same trap the target pays)."""
    tracefs = uprobes.find_tracefs()
    group = uprobes.session_group()
    libc_path = next((m.path for m in read_exec_mappings(os.getpid()) if uprobes.is_libc(m.path)), None)
    if libc_path is None:
        raise ProbeError("no libc mapped in this process")
    off = uprobes.probe_offset(libc_path, "malloc")
    if off is None:
        raise ProbeError(f"{libc_path} has no symbol 'malloc'")
    event = "calibrate_malloc"
    libc = ctypes.CDLL(libc_path)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    malloc, free = libc.malloc, libc.free

    def loop() -> float:
        t = time.perf_counter()
        for _ in range(calls):
            free(malloc(16))
        return time.perf_counter() - t

    # Only this one event, never the whole group: an allocs session of ours may be using it.
    eid = uprobes.define_probe(tracefs, group, event, libc_path, off)
    try:
        best = float("inf")
        for _ in range(rounds):
            base = loop()
            fd = uprobes.open_counter(eid, 0)
            try:
                before = read_count(fd)
                probed = loop()
                n = read_count(fd) - before
            finally:
                os.close(fd)
            if n:
                best = min(best, max(0.0, probed - base) / n)
        return best if best != float("inf") else 0.0
    finally:
        with contextlib.suppress(OSError):
            uprobes.remove_probe(tracefs, group, event)


def cost_per_call(*, refresh: bool = False) -> float | None:
    """Measured cost of one probed call on this machine in seconds (cached per boot); None if unknown
    (no tracefs, not root, no libc). ``refresh`` measures again. Never raises."""
    return _cached(CALL, _measure_call, (OSError, SourceError, KeyError), refresh)
