"""Per-thread allocator counters on real processes; the probes always go with the session."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hftmem_tui.probes import AllocProbes, plan_alloc_probes
from hftmem_tui.sources import procfs
from hftmem_tui.sources.perf.uprobes import define_probe, find_tracefs, list_session_probes
from tests.conftest import proc_status
from tests.helpers import uprobes_mark, wait_for

pytestmark = uprobes_mark()


def test_hot_alloc_counts_per_thread_and_samples_offenders(engine):
    pid = engine("--scenario", "hot-alloc")
    with AllocProbes(pid, guardian=False) as probes:
        threads = int(proc_status(pid)["Threads"])
        assert probes.events_open == threads * len(probes.specs)
        strat = next(t for t, n in probes.thread_names.items() if n == "hftmem-strat")
        wait_for(lambda: probes.counts().get(strat, {}).get("malloc", 0) > 100, 10, "100 mallocs counted on hftmem-strat")
        offenders = probes.sample_offenders([strat])
        assert offenders and all(o.tid == strat for o in offenders)
        assert any("engine.cpp:" in str(f) for o in offenders for f in o.frames)
    assert probes.events_open == 0 and not list_session_probes(group=probes.group)
    assert int(proc_status(pid)["TracerPid"]) == 0


def test_stale_group_of_a_dead_session_removed_at_start(engine):
    """A group left by a session that died with no guardian is removed by the next session."""
    pid = engine()
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"hftmem_{dead.pid}"
    specs, _ = plan_alloc_probes(pid)
    define_probe(find_tracefs(), stale, "malloc", specs[0].path, specs[0].offset)
    assert list_session_probes(group=stale)
    with AllocProbes(pid, guardian=False) as probes:
        assert stale in probes.stale_removed
        assert not list_session_probes(group=stale)
        assert list_session_probes(group=probes.group)
    assert not list_session_probes(group=probes.group)


def test_library_without_the_symbol_is_one_note_and_the_rest_counts():
    """A C program maps no libstdc++: operator new/delete are a note each, malloc still counts."""
    proc = subprocess.Popen(["sleep", "30"])
    try:
        wait_for(lambda: "libc" in Path(f"/proc/{proc.pid}/maps").read_text(), 5, "libc mapped in sleep")
        with AllocProbes(proc.pid, guardian=False) as probes:
            assert {s.function for s in probes.specs} == {"malloc", "free", "calloc", "realloc"}
            assert "no libstdc++ mapped: operator new not probed" in probes.notes
            assert all(isinstance(n, str) and "\n" not in n for n in probes.notes)
            assert probes.counts()  # counters are open on its thread
    finally:
        proc.kill()
        proc.wait()


def test_a_thread_that_exits_keeps_its_counts():
    """Counts of exited threads stay in counts(); their counters are closed."""
    code = ("import threading, ctypes, time, sys\n"
            "libc = ctypes.CDLL(None); libc.malloc.restype = ctypes.c_void_p; libc.free.argtypes = [ctypes.c_void_p]\n"
            "go = threading.Event()\n"
            "def work():\n"
            "    go.wait()\n"
            "    for _ in range(500): libc.free(libc.malloc(16))\n"
            "t = threading.Thread(target=work, name='worker'); t.start()\n"
            "print(t.native_id, flush=True); sys.stdin.readline(); go.set(); t.join()\n"
            "print('done', flush=True); time.sleep(30)\n")
    proc = subprocess.Popen(["python3", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        worker = int(proc.stdout.readline())
        with AllocProbes(proc.pid, guardian=False) as probes:
            before = probes.events_open
            proc.stdin.write("\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "done"
            # join() returns a moment before the OS thread is gone from /proc
            wait_for(lambda: probes.refresh_threads() and worker not in procfs.list_tasks(proc.pid), 5,
                     "the worker thread gone from /proc")
            probes.refresh_threads()
            assert probes.events_open == before - len(probes.specs)
            assert probes.counts()[worker]["malloc"] >= 500
    finally:
        proc.kill()
        proc.wait()
