"""perf hardware-breakpoint watchpoints against the real engine: no ptrace, no stop, ever."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hftmem_tui.sources.perf.breakpoints import PerfWatch
from hftmem_tui.sources.watchpoint import (
    HotField,
    WatchLimitError,
    WatchSpec,
    resolve_target,
)
from tests.conftest import ROOT, run_cli
from tests.disturbance import EngineStopMonitor
from tests.helpers import (
    needs_perf_breakpoints,
    slot_address,
    source_line,
    wait_engine_advances,
)

pytestmark = needs_perf_breakpoints


class StopWatcher(EngineStopMonitor):
    """EngineStopMonitor that fails on exit if any engine thread was traced or stopped.

    Judged by what the polls saw, and the polls by their number (at least 10, the last begun after
    the body ended), never by a wall-clock window a loaded machine shortens.
    """

    def __exit__(self, exc_type, *exc) -> None:
        super().__exit__(exc_type, *exc)
        if exc_type is None:
            assert not self.disturbed, f"the engine was traced or stopped: {self}"


def run_perfwatch(pid: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """`hftmem watch PID ... --via perf` (perf explicitly: a refusal must not fall back to gdb here)."""
    return run_cli("watch", pid, *args, "--via", "perf", timeout=timeout)


def test_count_3_on_a_stats_field_written_each_tick(engine):
    """The issue's "done when": three hits on hftmem_engine_stats.ticks, symbolised, exit 0, TracerPid 0 throughout."""
    pid = engine()
    line = source_line("store(S.ticks, seq)")
    with StopWatcher(pid):
        r = run_perfwatch(str(pid), "hftmem_engine_stats.ticks", "--count", "3", "--timeout", "20")
    assert r.returncode == 0, r.stderr
    hits = [ln for ln in r.stdout.splitlines() if ln.startswith("hit ")]
    assert len(hits) == 3, r.stdout
    for h in hits:
        assert re.search(r"tid \d+ hftmem_engine_stats\.ticks: \d+ -> \d+ \(read [\d,]+ us after the write\)", h), h
    locations = [ln for ln in r.stdout.splitlines() if ln.startswith("  at ")]
    assert len(locations) == 3
    for loc in locations:  # the writing instruction: real function + offset, its source line
        assert re.fullmatch(r"  at 0x[0-9a-f]+ engine::run_producer\(.*\)\+0x[0-9a-f]+ at \S+/native/engine/engine\.(h|cpp):\d+",
                            loc), loc
    # each call chain names the engine's own source line of the store (through the inlined helper)
    assert r.stdout.count(f"engine.cpp:{line}") >= 3, r.stdout
    assert "3 hits reported" in r.stdout


def test_overflow_caught_at_the_overrunning_copy(engine):
    """overflow: the write that spills "AAPL.NASDAQ" into price is caught at its source line."""
    pid = engine("--scenario", "overflow")
    line = source_line("dst[i] = src[i]")
    spec = WatchSpec(slot_address(pid, 16), 8, "write", "slots_[0].price")
    found = None
    with StopWatcher(pid), PerfWatch(pid, spec, max_rate=0) as w:
        for hit in w.hits(timeout=10):
            assert hit.backend == "perf" and hit.pause_s is None and hit.new_read_after
            if hit.location and hit.location.line == line:
                found = hit
                break
    assert found is not None, "the overflowing store was never reported"
    assert found.location.file.endswith("engine.cpp")
    assert found.location.function.startswith("engine::run_strategy")
    assert any(f.file and f.file.endswith("engine.cpp") for f in found.backtrace)


def test_use_after_free_caught_at_the_stale_write(engine):
    """use-after-free: the store through the stale pointer into a freed slot is caught, zero-stop."""
    pid = engine("--scenario", "use-after-free")
    line = source_line("0xBADu")
    spec = WatchSpec(slot_address(pid, 24), 4, "write", "slots_[0].qty")
    found = None
    with StopWatcher(pid), PerfWatch(pid, spec, max_rate=0) as w:
        for hit in w.hits(timeout=15):
            if hit.location and hit.location.line == line:
                found = hit
                break
        stats = w.stats
    assert found is not None, f"no hit at engine.cpp:{line} in {stats.hits} hits"
    assert found.location.file.endswith("engine.cpp")
    assert found.tid != pid  # the strategy thread, not main
    assert stats.cost_per_hit_s is not None and 0 < stats.cost_per_hit_s < 0.01


def test_hot_field_guard_disarms(engine):
    """messages is written ~100,000 times/s: the guard disarms it and says why; the kernel stops counting."""
    pid = engine()
    spec = resolve_target(pid, "hftmem_engine_stats.messages")
    with StopWatcher(pid), PerfWatch(pid, spec, max_rate=1000) as w:
        t0 = time.monotonic()
        with pytest.raises(HotField, match=r"hot field, [\d,]+ hits/s is above the limit of 1,000 hits/s"):
            for _ in w.hits(timeout=10):
                pass
        assert time.monotonic() - t0 < 2
        assert w.stats.disarmed
        before = w.stats.counted
        wait_engine_advances(pid, "hftmem_engine_stats.messages", by=200)  # 200 writes of the field
        assert w.stats.counted == before  # disarmed in the kernel, not just ignored


def test_hot_field_guard_cli(engine):
    pid = engine()
    r = run_perfwatch(str(pid), "hftmem_engine_stats.messages", "--max-rate", "500", "--timeout", "10")
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hftmem: disarmed hftmem_engine_stats.messages: hot field"), r.stderr


def test_bad_input_one_line(engine):
    pid = engine()
    cases = [
        (["hftmem_engine_stats.ticks", "--access", "read"], "no read-only hardware breakpoints"),
        (["0x1001:4"], "not aligned to 4"),
        (["0x1000:3"], "1, 2, 4 or 8 bytes"),
        (["hftmem_engine_stats.max_gap_hist"], "hardware watchpoint covers 1, 2, 4 or 8"),
        (["0x1000:8"], "not mapped"),
        (["hftmem_engine_stats.nope"], "no field 'nope'"),
    ]
    for args, needle in cases:
        r = run_perfwatch(str(pid), *args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and needle in lines[0], (args, r.stderr)
        assert "Traceback" not in r.stderr


def test_all_four_debug_registers_in_use(engine):
    """The fifth breakpoint on the same threads is refused by the kernel with a clear reason; closing frees them."""
    pid = engine()
    fields = ("magic", "version", "pid", "start_time_ns", "pool_capacity")
    specs = [resolve_target(pid, f"hftmem_engine_stats.{f}") for f in fields]
    watches = []
    try:
        for spec in specs[:4]:
            watches.append(PerfWatch(pid, spec, measure_cost=False))
        with pytest.raises(WatchLimitError, match="all 4 x86 debug registers are in use"):
            PerfWatch(pid, specs[4], measure_cost=False)
        watches.pop().close()
        watches.append(PerfWatch(pid, specs[4], measure_cost=False))  # a register is free again
    finally:
        for w in watches:
            w.close()
            w.close()  # idempotent


THREAD_LATER = r"""
import ctypes, sys, threading
buf = ctypes.create_string_buffer(64)
addr = (ctypes.addressof(buf) + 7) & ~7
print(hex(addr), flush=True)
sys.stdin.readline()  # armed: now start a thread that did not exist when the watch was armed
def write():
    ctypes.memset(addr, 7, 8)
    print(threading.get_native_id(), flush=True)
t = threading.Thread(target=write)
t.start(); t.join()
sys.stdin.readline()
"""


def test_thread_created_after_arming_is_watched():
    """inherit: a thread born after the breakpoint was armed still triggers it."""
    proc = subprocess.Popen([sys.executable, "-c", THREAD_LATER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        addr = int(proc.stdout.readline(), 16)
        with PerfWatch(proc.pid, WatchSpec(addr, 8, "write", "buf"), measure_cost=False) as w:
            proc.stdin.write("go\n")
            proc.stdin.flush()
            new_tid = int(proc.stdout.readline())
            assert new_tid != proc.pid
            hits = []
            for hit in w.hits(timeout=5):
                hits.append(hit)
                if hit.tid == new_tid:
                    break
        assert any(h.tid == new_tid and h.new == b"\x07" * 8 for h in hits), [(h.tid, h.new) for h in hits]
    finally:
        proc.kill()
        proc.wait()


def test_target_exit_ends_the_stream(engine):
    pid = engine()
    spec = resolve_target(pid, "hftmem_engine_stats.magic")  # never written: only the exit ends it
    with PerfWatch(pid, spec, measure_cost=False) as w:
        from tests.conftest import stop_process

        assert w.event_count > 0 and not w.closed
        stop_process(pid)
        t0 = time.monotonic()
        assert list(w.hits(timeout=10)) == []
        assert time.monotonic() - t0 < 3
        assert w.reader_done and not w.closed  # the exit ended the stream, not close()
    assert w.closed


def test_sigkill_of_the_watcher_frees_its_debug_register(engine):
    """A SIGKILLed watcher leaves nothing armed: all 4 debug registers can be taken right after."""
    pid = engine()
    proc = subprocess.Popen([sys.executable, "-m", "hftmem_tui.cli", "watch", str(pid), "hftmem_engine_stats.version"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("watching hftmem_engine_stats.version")
        specs = [resolve_target(pid, f"hftmem_engine_stats.{f}") for f in ("magic", "pid", "start_time_ns",
                                                                            "pool_capacity")]
        first = [PerfWatch(pid, s, measure_cost=False) for s in specs[:3]]
        try:
            with pytest.raises(WatchLimitError):  # the watcher still holds the 4th register
                PerfWatch(pid, specs[3], measure_cost=False)
            proc.kill()
            proc.wait(5)
            PerfWatch(pid, specs[3], measure_cost=False).close()  # freed by the kernel with the fds
        finally:
            for w in first:
                w.close()
        assert "TracerPid:\t0" in Path(f"/proc/{pid}/status").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
