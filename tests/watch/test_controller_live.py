"""The watch controller on the real engine: perf armed and disarmed, the gdb hot-field guard, untraced after."""

from __future__ import annotations

import pytest

from hftmem_tui.watch.events import Armed, Disarmed, GdbChanged, HitsSeen, Resolved
from tests.conftest import proc_status
from tests.helpers import WatchDriver, needs_perf_breakpoints

TICKS = "hftmem_engine_stats.ticks"  # written ~1,000 times a second


def tracer(pid: int) -> int:
    return int(proc_status(pid)["TracerPid"])


@needs_perf_breakpoints
def test_perf_watch_arms_reports_hits_and_disarms(engine):
    pid = engine()
    d = WatchDriver(pid)
    try:
        w, _ = d.c.arm(TICKS, max_rate_text="100000")
        assert d.c.resolved(d.next(Resolved)) == "arming"
        armed = d.next(Armed)
        assert armed.info.startswith("perf on ") and "no ptrace" in armed.info and armed.events > 0
        assert d.c.armed(armed) is w and w.state == "armed"
        while w.hits < 3:
            d.c.hits_seen(d.next(HitsSeen))
        assert d.c.take_pending() and w.rate(0.0) > 0
        assert d.c.disarm(w.wid) is None and w.state == "disarming"
        ev = d.next(Disarmed)
        assert ev.reason is None and d.c.disarmed(ev).startswith(f"disarmed {TICKS} after ")
        assert tracer(pid) == 0
    finally:
        d.c.shutdown()


@pytest.mark.slow
def test_gdb_hot_field_guard_disarms_and_detaches(engine):
    """The controller's HitRateGuard disarms a gdb watchpoint above max hits/s; the last one detaches gdb."""
    pid = engine()
    d = WatchDriver(pid)
    try:
        w, _ = d.c.arm(TICKS, via="gdb", max_rate_text="5")
        assert d.c.resolved(d.next(Resolved)) == "confirm"
        assert tracer(pid) == 0  # nothing attached before the confirm
        d.c.confirm(w.wid, True)
        attached = d.next(GdbChanged, timeout=30)
        d.c.gdb_changed(attached)
        assert attached.text.startswith("gdb attached (ptrace, non-stop)") and d.c.gdb_attached
        ev = d.next(Disarmed, timeout=30)
        assert ev.reason.startswith(f"disarmed {TICKS}: hot field, more than 5 hits in the last second"), ev.reason
        detached = d.next(GdbChanged, timeout=30)
        d.c.gdb_changed(detached)
        assert detached.detached and detached.text.startswith("gdb detached (TracerPid 0)") and not d.c.gdb_attached
        assert tracer(pid) == 0
    finally:
        d.c.shutdown()
    st = proc_status(pid)
    assert st["State"][0] in "RS" and int(st["TracerPid"]) == 0
