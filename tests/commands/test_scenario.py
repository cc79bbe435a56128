"""Each scenario's effect is real: seen in the engine's stats block (read zero-stop) or in /proc."""

from __future__ import annotations

import pytest

from hftmem_tui.feeds.engine_reader import read_engine_stats
from hftmem_tui.sources.engine import EngineControl
from hftmem_tui.sources.symbols import SymbolTable
from tests.conftest import proc_status, vm_rss_kib
from tests.helpers import wait_for


def stats_when(pid, table, predicate, timeout=6.0):
    """The engine's stats once ``predicate`` holds for them (polled zero-stop); AssertionError after ``timeout`` s."""
    last = [None]

    def seen():
        last[0] = read_engine_stats(pid, table)
        return last[0] if predicate(last[0]) else None

    return wait_for(seen, timeout, lambda: f"the effect in the engine's stats: {last[0]}", step=0.2)


@pytest.fixture
def running(engine):
    pid = engine()
    with SymbolTable.for_pid(pid) as table:
        before = stats_when(pid, table, lambda s: s.window_index >= 1)
        yield pid, table, before
    assert proc_status(pid)["State"][0] in "RS", "a scenario must never crash or stop the engine"


def _turn_on(pid, name):
    EngineControl(pid).set_scenario(name, True)


def test_use_after_free_overwrites_poison(running):
    pid, table, before = running
    _turn_on(pid, "use-after-free")
    s = stats_when(pid, table, lambda s: s.pool_poison_violations > before.pool_poison_violations + 5)
    assert "use-after-free" in s.active_scenarios


def test_overflow_corrupts_the_next_field(running):
    pid, table, before = running
    _turn_on(pid, "overflow")
    stats_when(pid, table, lambda s: s.corrupted_orders > before.corrupted_orders + 100)


def test_double_free_is_detected_and_counted(running):
    pid, table, before = running
    _turn_on(pid, "double-free")
    s = stats_when(pid, table, lambda s: s.pool_double_frees > before.pool_double_frees + 5)
    assert s.pool_live <= s.pool_capacity  # the free list was not corrupted into over-counting


def test_hot_alloc_counts_heap_allocations_on_the_hot_path(running):
    pid, table, before = running
    _turn_on(pid, "hot-alloc")
    stats_when(pid, table, lambda s: s.hot_path_allocs > before.hot_path_allocs + 10_000)


def test_pool_exhaustion_rejects_then_recovers(running):
    pid, table, before = running
    _turn_on(pid, "pool-exhaustion")
    s = stats_when(pid, table, lambda s: s.pool_rejects > before.pool_rejects + 100)
    assert s.pool_live == s.pool_capacity
    EngineControl(pid).set_scenario("pool-exhaustion", False)
    stats_when(pid, table, lambda s: s.pool_live < s.pool_capacity // 2)


def test_fragmentation_grows_rss_while_live_bytes_stay_small(running):
    pid, table, before = running
    rss0 = vm_rss_kib(pid)
    _turn_on(pid, "fragmentation")
    grown_kib = wait_for(lambda: (g := vm_rss_kib(pid) - rss0) > 4 * 1024 and g, 15,
                         lambda: f"the heap to grow 4 MiB (it grew {vm_rss_kib(pid) - rss0} KiB)")
    s = read_engine_stats(pid, table)
    assert s.frag_live_bytes < grown_kib * 1024 / 4, "live bytes should be far below the heap growth"


def test_leak_counts_leaked_bytes(running):
    pid, table, before = running
    _turn_on(pid, "leak")
    stats_when(pid, table, lambda s: s.leaked_bytes > before.leaked_bytes + 2 * 1024 * 1024)


def test_false_sharing_switches_rings_without_losing_ticks(running):
    pid, table, before = running
    on = read_engine_stats(pid, table)
    _turn_on(pid, "false-sharing")
    stats_when(pid, table, lambda s: s.window_index >= on.window_index + 2)  # 1-2 s on the packed ring
    EngineControl(pid).set_scenario("false-sharing", False)
    s = stats_when(pid, table, lambda s: s.window_index >= before.window_index + 2)
    assert s.messages > before.messages
    # Nothing lost or duplicated in the handover: every tick is consumed, dropped at a full ring
    # (counted: a starved strategy thread on a loaded VM), or still in one of the two rings.
    in_flight = s.ticks - s.ring_drops - s.messages
    assert 0 <= in_flight <= 2 * s.ring_capacity, (s.ticks, s.ring_drops, s.messages)
