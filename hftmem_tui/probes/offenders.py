"""Call chains of the first allocator calls on hot threads, sampled briefly.

Sampling costs the target more than counting (a call chain per call), so it runs only on the
threads asked for and stops as soon as enough distinct chains per function are in.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from dataclasses import dataclass

from hftmem_tui.sources.codemap import CodeMap, read_exec_mappings
from hftmem_tui.sources.perf.abi import IOC_ENABLE, IOC_SET_OUTPUT, REC_SAMPLE, Ring, ioctl, map_ring
from hftmem_tui.sources.perf.uprobes import decode_call_sample, open_sampler, signals_deferred
from hftmem_tui.sources.watchpoint import Frame
from hftmem_tui.probes.plan import ProbeSpec

__all__ = ["Offender", "sample_offenders"]

QUIET_S = 0.05  # stop once no new call chain turned up for this long


@dataclass(frozen=True, slots=True)
class Offender:
    """One allocation seen on a hot thread, with its call chain (innermost first)."""

    tid: int
    function: str
    frames: tuple[Frame, ...]
    count: int = 1  # identical chains seen in the sample window


def probe_addresses(pid: int, specs: list[ProbeSpec]) -> dict[int, str]:
    """Runtime address of each probed entry point in ``pid`` -> function (names a sample's probe).
    Raises NoSuchProcess."""
    out = {}
    maps = read_exec_mappings(pid)
    for spec in specs:
        for m in maps:
            if m.path == (spec.mapped_as or spec.path) and m.offset <= spec.offset < m.offset + (m.end - m.start):
                out[m.start + spec.offset - m.offset] = spec.function
    return out


class _Chains:
    """Distinct (thread, function, call chain) seen so far, at most ``limit`` per function."""

    def __init__(self, code: CodeMap, entry_points: dict[int, str], limit: int) -> None:
        self.code, self.entry_points, self.limit = code, entry_points, limit
        self.seen: dict[tuple[int, str, tuple[int, ...]], list] = {}  # key -> [count, frames]
        self.per_function: dict[str, int] = {}

    def on_record(self, rtype: int, _misc: int, payload: bytes) -> None:
        if rtype != REC_SAMPLE:
            return
        ip, tid, chain = decode_call_sample(payload)
        entry = self.code.frame(ip)
        function = self.entry_points.get(ip) or entry.function or "?"
        key = (tid, function, tuple(chain))
        if key not in self.seen:
            if self.per_function.get(function, 0) >= self.limit:
                return
            self.per_function[function] = self.per_function.get(function, 0) + 1
            frames = (entry,) + tuple(f for a in chain[1:] for f in self.code.frames(a, return_address=True))
            self.seen[key] = [0, frames]
        self.seen[key][0] += 1

    def offenders(self) -> list[Offender]:
        return [Offender(tid, fn, frames, n) for (tid, fn, _chain), (n, frames) in self.seen.items()]


def _open(tids: list[int], events: list[int], fds: list[int], mms: list) -> list[Ring]:
    """One disabled sampler per (thread, probe), all of a thread's into one ring; fills fds, mms."""
    rings = []
    for tid in tids:
        leader = None
        for event_id in events:
            try:
                with signals_deferred():  # an fd lost to SIGTERM would keep the probe busy
                    fds.append(fd := open_sampler(event_id, tid))
            except OSError:
                break  # the thread exited
            if leader is None:
                leader = fd
                with signals_deferred():
                    mms.append(map_ring(fd, 8))
                rings.append(Ring(mms[-1]))
            else:
                ioctl(fd, IOC_SET_OUTPUT, leader)
    return rings


def _collect(fds: list[int], rings: list[Ring], chains: _Chains, duration: float) -> None:
    for fd in fds:
        ioctl(fd, IOC_ENABLE, 0)
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    start = time.monotonic()
    deadline = start + duration
    last_new, distinct = start, 0
    # Stop once new call chains stop turning up (QUIET_S without one) or at the deadline.
    while (now := time.monotonic()) < deadline and not (distinct and now - last_new > QUIET_S):
        poller.poll(max(1, int(min(deadline - now, 0.05) * 1000)))
        for ring in rings:
            ring.drain(chains.on_record)
        if len(chains.seen) > distinct:
            distinct, last_new = len(chains.seen), time.monotonic()


def sample_offenders(pid: int, probes: list[tuple[ProbeSpec, int]], tids: list[int], *, duration: float = 0.5,
                     max_per_function: int = 3, code: CodeMap | None = None) -> list[Offender]:
    """Call chains of the first allocations on ``tids`` of ``pid``, sampled for at most ``duration`` s
    on the uprobes ``probes`` ((spec, tracepoint id) each). Raises NoSuchProcess, OSError."""
    fds: list[int] = []
    mms: list = []
    own_code = code is None
    code = code or CodeMap(pid)
    try:
        chains = _Chains(code, probe_addresses(pid, [spec for spec, _ in probes]), max_per_function)
        rings = _open(tids, [event_id for _, event_id in probes], fds, mms)
        _collect(fds, rings, chains, duration)
    finally:
        for mm in mms:
            with contextlib.suppress(BufferError, ValueError):
                mm.close()
        for fd in fds:
            os.close(fd)
        if own_code:
            code.close()
    return chains.offenders()
