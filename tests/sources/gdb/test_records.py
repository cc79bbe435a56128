"""MI records read into thread states and hits: pure, on records as gdb 13 prints them."""

from __future__ import annotations

from hftmem_tui.sources.gdb.records import (
    TargetThreads,
    breakpoint_type,
    lwps_of,
    symbolised,
    value_bytes,
    watch_hit,
    watch_number,
    watchpoint_number,
)
from hftmem_tui.sources.watchpoint import Frame, WatchSpec

SPEC = WatchSpec(0x1000, 8, "write", "stats.ticks")


def notify(message: str, **payload) -> dict:
    return {"type": "notify", "message": message, "payload": payload, "token": None, "stream": "stdout"}


def test_thread_states_follow_gdbs_notices():
    t = TargetThreads()
    assert not t.apply({"type": "result", "message": "done", "payload": None, "token": 3})  # answers are not ours
    for tid in ("1", "2"):
        t.apply(notify("thread-created", id=tid, **{"group-id": "i1"}))
    t.apply(notify("running", **{"thread-id": "all"}))
    assert t.running == {"1", "2"} and not t.stopped
    assert t.apply(notify("stopped", reason="signal-received", **{"thread-id": "2", "stopped-threads": ["2"]}))
    assert t.stopped == {"2"} and t.running == {"1"} and len(t.stops) == 1
    t.keep_stops(lambda p: p.get("thread-id") != "2")
    assert not t.stops
    t.apply(notify("thread-exited", id="2", **{"group-id": "i1"}))
    assert set(t.threads) == {"1"} and not t.stopped
    t.apply(notify("thread-group-exited", id="i1", **{"exit-code": "3"}))
    assert t.exit_code == "3"


def test_lwps_and_watchpoint_answers():
    assert lwps_of({"threads": [{"id": "1", "target-id": "Thread 0x7f (LWP 4242)"},
                                {"id": "2", "target-id": "process 77"}, {"id": "3", "target-id": "?"}]}) \
        == {"1": 4242, "2": 77, "3": None}
    assert watchpoint_number({"wpt": {"number": "4", "exp": "*(unsigned long *) 0x1000"}}) == 4
    assert watchpoint_number({"hw-awpt": {"number": "5"}}) == 5
    assert breakpoint_type({"BreakpointTable": {"body": [{"number": "4", "type": "hw watchpoint"}]}}) == "hw watchpoint"
    assert breakpoint_type({"BreakpointTable": {"body": []}}) == ""


def test_values_as_gdb_prints_them():
    assert value_bytes("42", 8) == (42).to_bytes(8, "little")
    assert value_bytes("65 'A'", 1) == b"A"
    assert value_bytes("256", 1) is None and value_bytes(None, 4) is None and value_bytes("<error>", 4) is None


def test_a_hit_from_a_stopped_record():
    stop = {"reason": "watchpoint-trigger", "wpt": {"number": "4", "exp": "x"}, "thread-id": "2",
            "value": {"old": "7", "new": "8"}, "frame": {"addr": "0x401000", "func": "tick"}}
    assert watch_number(stop) == 4
    stack = [{"level": "0", "addr": "0x401000", "func": "tick", "file": "engine.cpp", "line": "12"},
             {"level": "1", "addr": "0x402000", "func": "run", "file": "engine.cpp", "line": "30"}]
    hit = watch_hit(100.0, stop, SPEC, lwp=4242, last=None, new=(8).to_bytes(8, "little"), pause=0.004, stack=stack)
    assert hit.old == (7).to_bytes(8, "little") and hit.tid == 4242 and hit.pause_s == 0.004
    assert hit.extra["gdb_thread"] == "2" and not hit.extra["stopped"] and hit.location is None
    named = symbolised(hit, None)  # no code map: gdb's own names
    assert named.location == Frame(0x401000, "tick", None, "engine.cpp", 12)
    assert [f.function for f in named.backtrace] == ["tick", "run"] and "gdb_frames" not in named.extra
    held = watch_hit(100.0, stop, SPEC, lwp=None, last=b"\0" * 8, new=None, pause=None, stack=[])
    assert held.extra["stopped"] and held.old == (7).to_bytes(8, "little")
