"""The watch controller's state machine, driven the way the pane drives it, without a target process.

``ADDR:LEN`` targets resolve without touching the process, and a pid that no longer exists makes
every backend fail at its first real step: so resolving, confirming, refusing and disarming are
all exercised here with real threads and no process (the live tests arm on the engine).
"""

from __future__ import annotations

import subprocess

import pytest

from hftmem_tui.sources.watchpoint import WatchHit, WatchSpec
from hftmem_tui.watch.controller import (
    LOG_PER_BATCH,
    LOG_PER_FLUSH,
    WatchRefused,
    choose_backend,
    default_max_rate,
)
from hftmem_tui.watch.events import Armed, Disarmed, HitsSeen, Resolved
from tests.helpers import PERF_BREAKPOINTS, WatchDriver, needs_perf_breakpoints


@pytest.fixture
def gone_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_refusals_come_before_any_thread_or_lookup(gone_pid):
    d = WatchDriver(gone_pid)
    for text, needle in (("x = 1", "refused: "), ("abort()", "refused: "), ("", "refused: ")):
        with pytest.raises(WatchRefused, match=needle):
            d.c.arm(text)
    with pytest.raises(WatchRefused, match=r"^access must be write or rw, not 'read' \(x86 has no read-only"):
        d.c.arm("0x1000:8", access="read")
    with pytest.raises(WatchRefused, match="^refused: max hits/s must be positive$"):
        d.c.arm("0x1000:8", via="gdb", max_rate_text="0")
    assert not d.c.watches and d.events.empty()


def test_all_four_debug_registers_refused(gone_pid):
    d = WatchDriver(gone_pid)
    for i in range(4):
        w, _ = d.c.arm(f"0x{0x1000 + 8 * i:x}:8", via="gdb")
        assert w.state == "resolving" and w.max_rate == default_max_rate("gdb")
    assert d.c.registers_used() == 4
    with pytest.raises(WatchRefused, match="all 4 x86 debug registers are in use"):
        d.c.arm("0x2000:8", via="gdb")


def test_resolving_fails_on_a_symbol_of_a_gone_process(gone_pid):
    d = WatchDriver(gone_pid)
    w, _ = d.c.arm("hftmem_engine_stats.ticks", via="gdb")
    ev = d.next(Resolved)
    assert ev.spec is None and ev.error
    assert d.c.resolved(ev) == "refused"


def test_gdb_asks_first_and_cancel_leaves_nothing(gone_pid):
    d = WatchDriver(gone_pid)
    w, note = d.c.arm("0x1000:8", via="gdb", max_rate_text="7")
    assert note is None and w.max_rate == 7.0
    ev = d.next(Resolved)
    assert ev.spec == WatchSpec(0x1000, 8, "write", "0x1000:8") and ev.backend == "gdb"
    assert d.c.resolved(ev) == "confirm" and w.state == "confirm?" and w.spec == ev.spec
    assert d.c.confirm(w.wid, False) == "cancelled: 0x1000:8 not armed (gdb not attached)"
    d.c.remove(w.wid)
    assert not d.c.watches and w.state == "disarmed"


def test_gdb_confirmed_on_a_gone_process_reports_not_armed(gone_pid):
    d = WatchDriver(gone_pid)
    w, _ = d.c.arm("0x1000:8", via="gdb")
    d.c.resolved(d.next(Resolved))
    assert d.c.confirm(w.wid, True) is None
    assert w.state == "attaching" and d.c.gdb_pending()
    ev = d.next(Disarmed)
    assert ev.reason.startswith("not armed: ")
    assert d.c.disarmed(ev) == ev.reason
    d.c.remove(w.wid)
    d.c.shutdown()  # the gdb thread ends: nothing left running
    assert not d.c.gdb_attached


def test_disarm_before_it_is_armed_drops_the_late_result(gone_pid):
    d = WatchDriver(gone_pid)
    w, _ = d.c.arm("0x1000:8", via="gdb")
    assert d.c.disarm(w.wid) == "disarmed before it was armed"
    d.c.remove(w.wid)
    assert d.c.resolved(d.next(Resolved)) == "gone"
    assert d.c.disarm(w.wid) is None  # twice: nothing to do


def test_disarm_while_gdb_attaches_is_queued_behind_the_arm(gone_pid):
    d = WatchDriver(gone_pid)
    w, _ = d.c.arm("0x1000:8", via="gdb")
    d.c.resolved(d.next(Resolved))
    d.c.confirm(w.wid, True)
    assert d.c.disarm(w.wid) is None and w.state == "disarming"
    reasons = [d.next(Disarmed).reason, d.next(Disarmed).reason]  # the failed arm, then the disarm itself
    assert reasons[0].startswith("not armed: ") and reasons[1] is None
    assert d.c.armed(Armed(w.wid, "late")) is None  # an Armed after the disarm is not shown as armed
    d.c.shutdown()


@needs_perf_breakpoints
def test_perf_on_a_gone_process_reports_not_armed(gone_pid):
    d = WatchDriver(gone_pid)
    w, note = d.c.arm("0x1000:8")
    assert w.backend == "perf" and note is None
    assert d.c.resolved(d.next(Resolved)) == "arming" and w.state == "arming"
    ev = d.next(Disarmed)
    assert ev.reason.startswith("not armed: ")


def test_hits_are_counted_and_the_log_keeps_the_latest(gone_pid):
    d = WatchDriver(gone_pid)
    w, _ = d.c.arm("0x1000:8", via="gdb")
    spec = WatchSpec(0x1000, 8, "write", "0x1000:8")
    hits = [WatchHit(float(i), spec, 1, None, None, False, None, pause_s=0.002, backend="gdb") for i in range(10)]
    d.c.hits_seen(HitsSeen(w.wid, tuple(hits)))
    assert w.hits == 10 and len(w.pauses) == 10 and w.cost_per_hit() == pytest.approx(0.002)
    assert [h.time for _, h in d.c.pending] == [7.0, 8.0, 9.0]  # LOG_PER_BATCH per batch
    for _ in range(3):
        d.c.hits_seen(HitsSeen(w.wid, tuple(hits[:LOG_PER_BATCH])))
    assert len(d.c.take_pending()) == LOG_PER_FLUSH and d.c.pending == []
    d.c.hits_seen(HitsSeen(w.wid, (), counted=12345, rate_hz=99.0))  # perf: the kernel's count wins
    assert w.hits == 12345 and w.rate(0.0) == 99.0
    assert d.c.disarmed(Disarmed(w.wid, None)) == "disarmed 0x1000:8 after 12345 hits"


def test_armed_events_say_what_armed_watches_cost(gone_pid):
    d = WatchDriver(gone_pid)
    w, _ = d.c.arm("0x1000:8", via="gdb")
    assert d.c.armed_events() == ()
    w.backend, w.state = "perf", "arming"
    assert d.c.armed(Armed(w.wid, "perf on 4 threads", events=8, cost_per_hit_s=1e-5)) is w
    d.c.hits_seen(HitsSeen(w.wid, (), counted=10, rate_hz=100.0))
    (e,) = d.c.armed_events()
    assert e.what == "perf watch" and e.events == 8 and e.rate_hz == 100.0 and e.engine_fraction == pytest.approx(1e-3)


def test_choose_backend_rule():
    assert choose_backend(1, "gdb") == ("gdb", None)
    backend, note = choose_backend(1, None, "read")
    assert backend == "gdb" and note.startswith("perf has no read-only hardware breakpoints")
    if PERF_BREAKPOINTS:
        assert choose_backend(1, None) == ("perf", None)
