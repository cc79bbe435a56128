"""gdb watchpoints against the real engine with real gdb: they catch the bug, and never harm the engine.

Every test ends by checking /proc itself: the engine runs (state not T/t) and TracerPid is 0.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hftmem_tui.errors import AccessDenied, NoSuchProcess
from hftmem_tui.sources.exprguard import ForbiddenExpression
from hftmem_tui.sources.gdb.session import AlreadyTraced, GdbSession, check_attach
from hftmem_tui.sources.memory import read_memory
from hftmem_tui.sources.perf.breakpoints import PerfWatch, check_perf_access
from hftmem_tui.sources.symbols import SymbolTable
from hftmem_tui.sources.watchpoint import WatchLimitError, WatchSpec, resolve_target
from tests.conftest import ROOT, proc_status, run_cli, stop_process
from tests.helpers import (
    engine_counter,
    gone,
    slot_address,
    source_line,
    wait_engine_advances,
    wait_for,
)

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")

ORDER_QTY, ORDER_PRICE = 24, 16  # Order layout (native/README.md); checked against DWARF below


def task_states(pid: int) -> dict[int, str]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out[int(tid)] = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            pass
    return out


def assert_untraced_and_running(pid: int, within: float = 2.0) -> float:
    """Poll /proc until TracerPid is 0 and no thread is stopped; fail after ``within`` seconds."""
    t0 = time.monotonic()
    while True:
        st = proc_status(pid)
        states = task_states(pid)
        if st["TracerPid"] == "0" and not any(s in "tT" for s in states.values()):
            return time.monotonic() - t0
        if time.monotonic() - t0 > within:
            raise AssertionError(f"engine {pid} still traced/stopped after {within} s: TracerPid "
                                 f"{st['TracerPid']}, threads {states}")
        time.sleep(0.01)


def assert_engine_moves(pid: int) -> None:
    """The engine's producer runs: its tick counter goes up (AssertionError after 5 s if not)."""
    wait_engine_advances(pid, by=1, timeout=5)


def test_order_layout_matches_the_readme(engine):
    pid = engine()
    with SymbolTable.for_pid(pid) as t:
        layout = t.layout("hftmem_last_order")
    assert layout.get("qty").offset == ORDER_QTY and layout.get("price").offset == ORDER_PRICE


# ------------------------------------------------------------------ catching the bugs

@pytest.mark.slow
def test_overflow_caught_with_a_backtrace(engine):
    """overflow: the field after symbol[8] (price) of a pool slot; the overrunning copy is caught."""
    pid = engine("--scenario", "overflow")
    line = source_line("dst[i] = src[i]")
    spec = WatchSpec(slot_address(pid, ORDER_PRICE), 8, "write", "slots_[0].price")
    found = None
    with GdbSession(pid, max_rate=0) as s:
        s.watch(spec)
        for hit in s.hits(timeout=20):
            assert hit.backend == "gdb" and not hit.new_read_after and hit.pause_s is not None
            if hit.location and hit.location.line == line:
                found = hit
                break
    assert_untraced_and_running(pid)
    assert found is not None, "the overflowing store was never reported"
    assert found.location.file.endswith("engine.cpp") and found.location.function.startswith("engine::run_strategy")
    assert found.old != found.new
    assert found.new[0] == ord("D")  # "AAPL.NASDAQ"[8] is the first byte to land in price
    assert any(f.file and f.file.endswith("engine.cpp") for f in found.backtrace)
    assert found.tid in task_states(pid) and found.tid != pid  # the strategy thread


@pytest.mark.slow
def test_use_after_free_caught_on_a_freed_slot(engine):
    """use-after-free: stop on the write of hftmem_stale_order (once per 1000 messages) to see the pool
    at rest, work out which slot the NEXT stale write lands in, watch that slot's qty, catch it."""
    pid = engine("--scenario", "use-after-free")
    line = source_line("0xBADu")
    with SymbolTable.for_pid(pid) as t:
        pool = t.resolve_expr("hftmem_order_pool.slots_")
        base = t.runtime_address(pool, pid)
    stale = resolve_target(pid, "hftmem_stale_order")
    with GdbSession(pid, max_rate=0) as s:
        s.stop_on_hit = True  # the strategy thread stays stopped at the write
        wp = s.watch(stale)
        hit = s.next_hit(timeout=10)
        assert hit is not None and hit.extra["stopped"]
        assert task_states(pid)[hit.tid] == "t"
        slots = read_memory(pid, base, pool.size)  # consistent: the only writer is stopped
        victim = int.from_bytes(hit.new, "little")
        assert (victim - base) % 64 == 0
        ids = {int.from_bytes(slots[i:i + 8], "little"): i // 64 for i in range(0, len(slots), 64)}
        newest = max(i for i in ids if i < 1 << 40)
        # FIFO of 64 open orders, LIFO free list: the next victim (1000 messages on) is the slot that
        # holds order newest-38 now (see the scenario's code in engine.cpp: on_tick).
        slot = ids[newest - 38]
        s.unwatch(wp)
        s.stop_on_hit = False
        s.resume()
        assert task_states(pid)[hit.tid] != "t"
        target = WatchSpec(base + slot * 64 + ORDER_QTY, 4, "write", f"slots_[{slot}].qty")
        s.watch(target)
        found = None
        for h in s.hits(timeout=20):
            if h.location and h.location.line == line:
                found = h
                break
    assert_untraced_and_running(pid)
    assert found is not None, f"no write at engine.cpp:{line} into the freed slot {slot}"
    assert found.new == (0xBAD).to_bytes(4, "little")
    assert found.location.function.startswith("engine::run_strategy")


def test_stop_on_hit_then_resume(engine):
    """Stop-on-hit leaves the writing thread stopped (the others run) until resume()."""
    pid = engine()
    with GdbSession(pid) as s:
        s.stop_on_hit = True
        s.watch(resolve_target(pid, "hftmem_engine_stats.ticks"))
        hit = s.next_hit(timeout=10)
        assert hit is not None and hit.pause_s is None
        states = task_states(pid)
        assert states[hit.tid] == "t"
        assert any(s_ != "t" for tid, s_ in states.items() if tid != hit.tid)  # non-stop: only that thread
        pause = s.resume()
        assert pause is not None and pause > 0
    assert_untraced_and_running(pid)


def test_interrupt_then_resume(engine):
    """interrupt() stops every thread (the engine sees no signal), resume() lets them all go."""
    pid = engine()
    with GdbSession(pid) as s:
        lwps = s.interrupt()
        assert sorted(lwps) == sorted(task_states(pid))
        assert set(task_states(pid).values()) == {"t"}
        before = engine_counter(pid)
        time.sleep(0.1)  # an absence is watched for a while: the producer ticks ~1,000 times in 0.1 s
        assert engine_counter(pid) == before  # really stopped
        assert s.resume() > 0
        assert_engine_moves(pid)
    assert_untraced_and_running(pid)


def test_watch_cli_gdb_count_3(engine):
    """`hftmem watch PID field --count 3 --via gdb`: three hits with old -> new, exit 0, then TracerPid 0."""
    pid = engine()
    r = run_cli("watch", str(pid), "hftmem_engine_stats.ticks", "--count", "3", "--via", "gdb", "--timeout", "30")
    assert r.returncode == 0, r.stderr
    hits = [ln for ln in r.stdout.splitlines() if ln.startswith("hit ")]
    assert len(hits) == 3, r.stdout
    for h in hits:
        m = re.search(r"tid \d+ hftmem_engine_stats\.ticks: (\d+) -> (\d+)$", h)
        assert m and int(m.group(2)) > int(m.group(1)), h
    assert r.stdout.count("  at 0x") == 3 and "engine::run_producer" in r.stdout
    assert re.search(r"3 hits; detached \(TracerPid 0\); total pause caused: [\d.]+ ms \(attach [\d.]+ ms", r.stdout)
    assert_untraced_and_running(pid)
    assert_engine_moves(pid)


def test_watch_cli_default_is_perf(engine):
    pid = engine()
    try:
        check_perf_access(pid)
    except AccessDenied:
        pytest.skip("perf breakpoints not allowed for this user")
    # --max-rate 0: ticks is written ~2,500 times/s, right at perf's default guard; this test is
    # about which backend is chosen, not the guard
    r = run_cli("watch", str(pid), "hftmem_engine_stats.ticks", "--count", "3", "--timeout", "20", "--max-rate", "0")
    assert r.returncode == 0, r.stderr
    assert "via perf" in r.stdout.splitlines()[0] and "engine never stopped" in r.stdout
    assert len([ln for ln in r.stdout.splitlines() if ln.startswith("hit ")]) == 3
    assert proc_status(pid)["TracerPid"] == "0"


def test_hot_field_disarmed_under_gdb(engine):
    """messages is written ~100,000 times/s: each hit stops the strategy thread, so the guard disarms it."""
    pid = engine()
    r = run_cli("watch", str(pid), "hftmem_engine_stats.messages", "--via", "gdb", "--max-rate", "5",
                "--timeout", "20")
    err = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(err) == 1, r.stderr
    assert err[0].startswith("hftmem: disarmed hftmem_engine_stats.messages: hot field, more than 5 hits"), err[0]
    assert re.search(r"\d+ hits; detached \(TracerPid 0\)", r.stdout)
    assert "?" not in "".join(ln for ln in r.stdout.splitlines() if ln.startswith("hit "))
    assert_untraced_and_running(pid)


def test_read_watch_uses_gdb_and_says_why(engine):
    """x86 has no read-only breakpoints: `--access read` goes to gdb (it filters reads), one stderr line says so."""
    pid = engine()
    r = run_cli("watch", str(pid), "hftmem_engine_stats.scenarios", "--access", "read", "--count", "1",
                "--timeout", "20")  # read by the producer every burst, written only on a scenario switch
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("hftmem: perf has no read-only hardware breakpoints") and len(r.stderr.splitlines()) == 1
    assert "via gdb" in r.stdout.splitlines()[0] and re.search(r"scenarios: 0 -> 0$", r.stdout, re.M)
    assert_untraced_and_running(pid)


# ------------------------------------------------------------------ every exit path

@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_inspector_killed_under_an_armed_watchpoint(engine, sig):
    """Whatever kills the inspector, within 2 s the engine runs, untraced, with no watchpoint left armed.

    The field is written on every tick, so a debug register left ENABLED without a tracer would
    kill the engine with SIGTRAP at the next write: the engine must keep running and ticking.
    """
    pid = engine()
    proc = subprocess.Popen([sys.executable, "-m", "hftmem_tui.cli", "watch", str(pid), "hftmem_engine_stats.ticks",
                             "--via", "gdb", "--max-rate", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        header = proc.stdout.readline()
        assert header.startswith("watching hftmem_engine_stats.ticks"), header + proc.stderr.read()
        assert proc.stdout.readline().startswith("hit 1 ")  # armed and hitting
        assert proc_status(pid)["TracerPid"] != "0"
        guardians = [c for c in children(proc.pid) if b"sources.gdb.guardian" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(guardians) == 1, "the gdb session runs with its guardian"
        proc.send_signal(sig)
        assert_untraced_and_running(pid, within=2.0)
        proc.wait(timeout=10)
        assert proc.returncode != 0
        # ticks is the watched field: 100 more writes would each trap on a register left enabled
        wait_engine_advances(pid, by=100, timeout=5)
        # The guardian may still be clearing debug registers (a seize of microseconds per thread):
        # once it has exited, nothing may be left stopped or traced.
        wait_for(lambda: gone(guardians[0]), 10, "the guardian to finish")
        assert_untraced_and_running(pid, within=0)
        try:
            check_perf_access(pid)
        except AccessDenied:
            return
        # The kernel keeps a ptrace breakpoint slot reserved (disabled) per thread until the thread
        # exits: after one gdb watchpoint, 3 of the 4 registers are left for perf.
        fields = ("magic", "version", "pid")
        for w in [PerfWatch(pid, resolve_target(pid, f"hftmem_engine_stats.{f}"), measure_cost=False)
                  for f in fields]:
            w.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


@pytest.mark.slow
def test_inspector_and_gdb_both_sigkilled(engine):
    """Nobody detaches politely: the kernel drops the tracer, the guardian SIGCONTs a group-stopped engine."""
    pid = engine()
    proc = subprocess.Popen([sys.executable, "-m", "hftmem_tui.cli", "watch", str(pid),
                             "hftmem_engine_stats.window_index", "--via", "gdb"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("watching"), proc.stderr.read()
        gdb = [c for c in children(proc.pid) if "gdb" in Path(f"/proc/{c}/comm").read_text()]
        assert len(gdb) == 1
        proc.kill()
        os.kill(gdb[0], signal.SIGKILL)
        proc.wait(timeout=10)
        assert_untraced_and_running(pid, within=2.0)
        # window_index is written once a second: a debug register left enabled would SIGTRAP the engine
        # at its next write, so wait for that write, then for the engine to keep going
        wait_engine_advances(pid, "hftmem_engine_stats.window_index", by=1, timeout=5)
        assert_engine_moves(pid)
        assert_untraced_and_running(pid, within=0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_exception_inside_the_session_detaches(engine):
    pid = engine()
    with pytest.raises(RuntimeError, match="boom"), GdbSession(pid) as s:
        s.watch(resolve_target(pid, "hftmem_engine_stats.window_index"))
        raise RuntimeError("boom")
    assert_untraced_and_running(pid)


# ------------------------------------------------------------------ read-only

def test_forbidden_expressions_refused_and_memory_unchanged(engine):
    pid = engine()
    spec = resolve_target(pid, "hftmem_engine_stats.version")  # never written by the engine
    before = read_memory(pid, spec.address, 8)
    with GdbSession(pid) as s:
        assert s.evaluate("hftmem_engine_stats.version") == "1"
        for text in ("hftmem_engine_stats.version = 99", "hftmem_engine_stats.version++",
                     "hftmem_engine_stats.version += 1", "$rax = 0", "abort()"):
            with pytest.raises(ForbiddenExpression):
                s.evaluate(text)
        for cmd in ("set var hftmem_engine_stats.version = 99", "call abort()", "signal SIGKILL",
                    "jump *0", "return", "kill", "shell true", "python print(1)", "print hftmem_engine_stats.version=7"):
            with pytest.raises(ForbiddenExpression):
                s.console(cmd)
        assert "version" in s.console("ptype hftmem_engine_stats")
    assert read_memory(pid, spec.address, 8) == before
    assert_untraced_and_running(pid)


def test_cli_refuses_an_assignment_before_anything(engine):
    pid = engine()
    for text in ("x = 1", "hftmem_engine_stats.version = 99", "hftmem_last_order.qty++"):
        r = run_cli("watch", str(pid), text, "--via", "gdb")
        err = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(err) == 1 and err[0].startswith("hftmem: refused"), r.stderr
        assert "Traceback" not in r.stderr
    assert proc_status(pid)["TracerPid"] == "0"


# ------------------------------------------------------------------ bad input

def test_bad_input_one_line(engine):
    pid = engine()
    cases = [
        (["999999999", "hftmem_engine_stats.ticks"], "no process with pid 999999999"),
        ([str(pid), "hftmem_engine_stats.nope"], "no field 'nope'"),
        ([str(pid), "no_such_symbol_here"], "no symbol 'no_such_symbol_here'"),
        ([str(pid), "0x1001:4"], "not aligned to 4"),
        ([str(pid), "0x1000:16"], "1, 2, 4 or 8 bytes"),
        ([str(pid), "hftmem_engine_stats.max_gap_hist"], "hardware watchpoint covers 1, 2, 4 or 8"),
    ]
    for args, needle in cases:
        r = run_cli("watch", *args, "--via", "gdb", "--timeout", "1")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and needle in lines[0], (args, r.stderr)
    assert_untraced_and_running(pid)


def test_fifth_watchpoint_refused(engine):
    pid = engine()
    fields = ("magic", "version", "pid", "start_time_ns", "pool_capacity")
    with GdbSession(pid) as s:
        for f in fields[:4]:
            s.watch(resolve_target(pid, f"hftmem_engine_stats.{f}"))
        with pytest.raises(WatchLimitError, match="all 4 x86 debug registers are in use"):
            s.watch(resolve_target(pid, f"hftmem_engine_stats.{fields[4]}"))
        assert len(s.watchpoints) == 4
    assert_untraced_and_running(pid)


def test_target_exiting_while_watched(engine):
    pid = engine()
    with GdbSession(pid) as s:
        s.watch(resolve_target(pid, "hftmem_engine_stats.magic"))  # never written: only the exit ends it
        os.kill(pid, signal.SIGTERM)  # the engine's own signal goes through gdb to the engine
        t0 = time.monotonic()
        with pytest.raises(NoSuchProcess, match="exited while watched"):
            s.next_hit(timeout=10)
        assert time.monotonic() - t0 < 5
    stop_process(pid)


def test_already_traced_target_refused(engine):
    pid = engine()
    with GdbSession(pid):
        with pytest.raises(AlreadyTraced, match=r"already traced by pid \d+ \(gdb\)"):
            check_attach(pid)
        r = run_cli("watch", str(pid), "hftmem_engine_stats.ticks", "--via", "gdb")
        assert r.returncode == 1 and "already traced by pid" in r.stderr and len(r.stderr.splitlines()) == 1
    assert_untraced_and_running(pid)
