"""What a gdb watch session costs the demo engine, as the engine's own loop-gap stats see it.

The strategy thread times every loop iteration and publishes, per 1-second window, the largest gap
between two iterations (``max_gap_hist[window % 64]`` in its stats block, read zero-stop). A pause
caused by the inspector shows up as that window's max gap. Measured per round, on a fresh engine:

* attach pause: non-stop with ``attach&`` (what GdbSession does: gdb resumes each thread itself),
  non-stop waiting for every stop then ``-exec-continue --all``, and all-stop (raw gdb/MI, ended by
  SIGKILLing gdb, harmless without watchpoints, because its -exec-interrupt would SIGINT the engine);
* pause per hit in log-and-continue mode: a watchpoint on ``hftmem_engine_stats.window_index``,
  written once per window by the strategy thread itself, so each window holds exactly one hit;
* detach pause.

Also printed: the same pauses seen from the inspector (GdbSession.stats), and the baseline max gap.

    .venv/bin/python benchmarks/bench_gdbwatch.py [--rounds 3] [--hits 4] [--json]

Plain script rather than pyperf: the quantity is the target's pause, not our own run time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hftmem_tui.sources.engine import find_engine, start_engine  # noqa: E402
from hftmem_tui.sources.gdb.session import GdbSession  # noqa: E402
from hftmem_tui.feeds.engine_reader import read_engine_stats  # noqa: E402
from hftmem_tui.sources.symbols import SymbolTable  # noqa: E402
from hftmem_tui.sources.watchpoint import resolve_target  # noqa: E402


class Gaps:
    """The engine's per-window max loop gap, read zero-stop."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.table = SymbolTable.for_pid(pid)

    def stats(self):
        return read_engine_stats(self.pid, self.table)

    def window(self) -> int:
        return self.stats().window_index

    def wait_window(self, target: int, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while self.window() < target:
            if time.monotonic() > end:
                raise TimeoutError("the engine stopped publishing windows")
            time.sleep(0.02)

    def max_gap_ms(self, first: int, last: int) -> float:
        """Largest max gap over completed windows first..last (inclusive), in ms."""
        hist = self.stats().max_gap_hist
        return max(hist[w % 64] for w in range(first, last + 1)) / 1e6

    def gaps_ms(self, first: int, last: int) -> list[float]:
        hist = self.stats().max_gap_hist
        return [hist[w % 64] / 1e6 for w in range(first, last + 1)]

    def around(self, action) -> tuple[float, object]:
        """Run ``action`` inside a fresh window; the max gap of the windows it touched, and its result."""
        w0 = self.window()
        self.wait_window(w0 + 1)  # start right after a window boundary
        w1 = self.window()
        result = action()
        w2 = self.window()
        self.wait_window(w2 + 1)  # the window the action ended in is complete
        return self.max_gap_ms(w1, w2), result


def all_stop_attach(pid: int) -> None:
    """Raw gdb/MI in all-stop mode: attach, continue; returns when the engine runs again."""
    from pygdbmi.gdbcontroller import GdbController

    ctl = GdbController(["gdb", "--nx", "--nh", "--quiet", "--interpreter=mi3", "-iex", "set auto-load off",
                         "-iex", "set debuginfod enabled off", "-iex", "set confirm off"],
                        time_to_check_for_additional_output_sec=0.0002)
    try:
        for i, cmd in enumerate(["-gdb-set mi-async on", "-gdb-set auto-solib-add off",
                                 "-gdb-set print frame-arguments none", f"-file-exec-and-symbols /proc/{pid}/exe",
                                 f"-target-attach {pid}", "-exec-continue"], start=1):
            ctl.write(f"{i}{cmd}", read_response=False)
            while True:
                recs = ctl.get_gdb_response(timeout_sec=0.05, raise_error_on_timeout=False)
                if any(r.get("type") == "result" and r.get("token") == i for r in recs):
                    break
        time.sleep(0.2)
    finally:
        # No watchpoint was set: the kernel's detach at gdb's death leaves nothing behind. Not
        # -exec-interrupt: in all-stop that SIGINTs the engine, which takes it as "quit".
        ctl.gdb_process.send_signal(signal.SIGKILL)
        ctl.gdb_process.wait()


def one_round(hits: int) -> dict:
    proc = start_engine([], binary=find_engine())
    pid = proc.pid
    try:
        g = Gaps(pid)
        g.wait_window(4)  # warm up
        w = g.window()
        baseline = g.gaps_ms(w - 3, w - 1)
        out: dict = {"baseline_max_gap_ms": max(baseline)}
        out["all_stop_attach_gap_ms"], _ = g.around(lambda: all_stop_attach(pid))
        waitall = GdbSession(pid)
        try:
            out["attach_waitall_gap_ms"], _ = g.around(lambda: waitall.attach(background=False))
        finally:
            waitall.close()
        session = GdbSession(pid)
        try:
            out["attach_gap_ms"], _ = g.around(session.attach)
            out["attach_inspector_ms"] = session.attach_pause_s * 1e3
            session.watch(resolve_target(pid, "hftmem_engine_stats.window_index"))
            w0 = g.window()
            got = list(session.hits(timeout=hits + 5, count=hits))
            g.wait_window(g.window() + 1)
            # each window after w0 held one hit (the write that publishes it)
            out["hit_gaps_ms"] = g.gaps_ms(w0 + 1, w0 + len(got))
            out["hit_inspector_ms"] = [h.pause_s * 1e3 for h in got]
            out["detach_gap_ms"], _ = g.around(session.detach)
            out["detach_inspector_ms"] = (session.detach_pause_s or 0) * 1e3
        finally:
            session.close()
        st = Path(f"/proc/{pid}/status").read_text()
        out["tracer_after"] = int(st.split("TracerPid:")[1].split()[0])
        g.table.close()
        return out
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hits", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rounds = [one_round(args.hits) for _ in range(args.rounds)]
    med = statistics.median

    def summary(key: str) -> dict:
        vals = [v for r in rounds for v in (r[key] if isinstance(r[key], list) else [r[key]])]
        return {"median": med(vals), "max": max(vals), "n": len(vals)}

    keys = ("baseline_max_gap_ms", "all_stop_attach_gap_ms", "attach_waitall_gap_ms", "attach_gap_ms", "attach_inspector_ms",
            "hit_gaps_ms", "hit_inspector_ms", "detach_gap_ms", "detach_inspector_ms")
    result = {k: summary(k) for k in keys}
    result["rounds"] = rounds
    result["cpus"] = os.cpu_count()
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    names = {
        "baseline_max_gap_ms": "engine max loop gap, no inspector (per 1-s window)",
        "all_stop_attach_gap_ms": "attach, all-stop (raw gdb/MI), engine max gap",
        "attach_waitall_gap_ms": "attach, non-stop, all stops then continue --all",
        "attach_gap_ms": "attach, non-stop, attach& (GdbSession), engine max gap",
        "attach_inspector_ms": "attach, non-stop, attach&, seen by the inspector",
        "hit_gaps_ms": "one hit, log-and-continue, engine max gap",
        "hit_inspector_ms": "one hit, seen by the inspector (*stopped -> ^running)",
        "detach_gap_ms": "detach, engine max gap",
        "detach_inspector_ms": "detach, seen by the inspector",
    }
    print(f"gdb watch session cost on the demo engine ({args.rounds} rounds, {os.cpu_count()} CPUs)")
    for k in keys:
        s = result[k]
        print(f"  {names[k]:<58} median {s['median']:8.2f} ms   max {s['max']:8.2f} ms   (n={s['n']})")
    print(f"  TracerPid after each round: {[r['tracer_after'] for r in rounds]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
