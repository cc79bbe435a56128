"""The one thread that owns a gdb session for the watch controller (GdbSession is not shared).

It takes arm/disarm requests from a queue, waits for hits in between, guards each watchpoint's
hit rate, and detaches when the last gdb watchpoint goes (the target ends untraced).
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Callable

from hftmem_tui.errors import NoSuchProcess, SourceError, ZombieProcess
from hftmem_tui.sources.gdb.session import GdbSession
from hftmem_tui.sources.watchpoint import HitRateGuard, WatchSpec
from hftmem_tui.watch.events import Armed, Disarmed, GdbChanged, HitsSeen, WatchEvent
from hftmem_tui.watch.format import ms

__all__ = ["GdbOwner"]


class GdbOwner:
    """The gdb thread's state: one session, its watchpoints by id, one HitRateGuard each."""

    def __init__(self, pid: int, post: Callable[[WatchEvent], None], requests: queue.Queue) -> None:
        self.pid = pid
        self.post = post
        self.requests = requests
        self.session: GdbSession | None = None
        self.wps: dict[int, object] = {}
        self.guards: dict[int, HitRateGuard] = {}

    def detach(self) -> None:
        """Detach gdb if attached (the target runs untraced) and post what the session cost."""
        if self.session is None:
            return
        s, self.session = self.session, None
        s.close()
        st = s.stats
        self.post(GdbChanged(True, (
            f"gdb detached (TracerPid 0): it paused the engine {ms(st.total_pause_s)} in all — attach "
            f"{ms(st.attach_pause_s)}, {len(st.hit_pauses_s)} hits {ms(sum(st.hit_pauses_s))}, "
            f"detach {ms(st.detach_pause_s)}")))

    def step(self) -> bool:
        """One turn: a request if any, else wait for a hit. False when asked to close."""
        try:
            cmd = self.requests.get(timeout=0.0 if self.wps else 0.25)
        except queue.Empty:
            cmd = None
        if cmd is not None:
            kind, wid, arg = cmd
            if kind == "close":
                return False
            if kind == "arm":
                self.arm(wid, *arg)
            elif kind == "disarm":
                self.disarm(wid, arg)
            return True
        if self.session is not None and self.wps:
            self.next_hit()
        return True

    def arm(self, wid: int, spec: WatchSpec, max_rate: float) -> None:
        """Attach if needed and insert the watchpoint; posts Armed, or Disarmed with the reason."""
        try:
            if self.session is None:
                self.session = GdbSession(self.pid)
                self.session.attach()
                self.post(GdbChanged(False, (f"gdb attached (ptrace, non-stop): attaching paused the engine "
                                             f"{ms(self.session.attach_pause_s)}")))
            self.wps[wid] = self.session.watch(spec)
            self.guards[wid] = HitRateGuard(max_rate)
            self.post(Armed(wid, "gdb (ptrace): each hit stops the writing thread"))
        except SourceError as e:
            self.post(Disarmed(wid, f"not armed: {e}"))
            if not self.wps:
                self.detach()

    def disarm(self, wid: int, reason: str | None) -> None:
        """Delete one watchpoint and post Disarmed(reason); the last one detaches gdb."""
        wp = self.wps.pop(wid, None)
        self.guards.pop(wid, None)
        if wp is not None and self.session is not None:
            with contextlib.suppress(SourceError):
                self.session.unwatch(wp)
        self.post(Disarmed(wid, reason))
        if not self.wps:
            self.detach()

    def next_hit(self) -> None:
        """Wait up to 0.1 s for a hit and post it; the guard queues a disarm for a hot field. A failed
        session (the target exited, gdb died) disarms every watchpoint and detaches."""
        try:
            hit = self.session.next_hit(0.1)
        except SourceError as e:  # the target exited, or gdb failed: every gdb watchpoint is gone
            why = "stopped" if isinstance(e, (NoSuchProcess, ZombieProcess)) else "gdb failed"
            for wid in list(self.wps):
                self.post(Disarmed(wid, f"{why}: {e}"))
            self.wps.clear()
            self.guards.clear()
            self.detach()
            return
        if hit is None:
            return
        wid = next((k for k, wp in self.wps.items() if wp.spec == hit.spec), None)
        if wid is None:
            return
        self.post(HitsSeen(wid, (hit,)))
        guard = self.guards[wid]
        if guard.hit(time.monotonic()):
            self.requests.put(("disarm", wid, (
                f"disarmed {hit.spec.label}: hot field, more than {guard.limit:,.0f} hits in the last second "
                f"(each stops the engine's thread for {ms(hit.pause_s)}); raise max hits/s or use perf")))
