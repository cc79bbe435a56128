"""Cost of one watchpoint hit to the target: perf_event_open backend vs `perf record | perf script` vs gdb.

One run, same machine, same target: a tiny C program (compiled here) that stores to a global
every ``--period-us`` and times each store itself (two vDSO clock reads around it), keeping
n / sum / max in a second global that we read zero-stop. A hit's cost as the target sees it is
(mean store time watched) - (mean store time unwatched). Also measured: hit -> report latency
and the inspector's own CPU per hit, and, on the demo engine, the producer thread's extra CPU
while its ``ticks`` field is watched (from /proc/PID/task/TID/schedstat, ns resolution).

    .venv/bin/python benchmarks/bench_watch.py [--hits 300] [--period-us 1000] [--json]

Plain script rather than pyperf: each backend needs its own process set-up (gdb attaches,
perf runs as children), and what we compare is the *target's* time, not ours.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hftmem_tui.sources.memory import read_memory  # noqa: E402
from hftmem_tui.sources.perf.breakpoints import PerfWatch  # noqa: E402
from hftmem_tui.sources.watchpoint import WatchSpec, resolve_target  # noqa: E402

WRITER_C = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
volatile uint64_t watched;
volatile uint64_t stats[3];  /* stores, sum of store ns, max store ns */
static inline uint64_t now(void) {
  struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
__attribute__((noinline)) void store_field(uint64_t v) { watched = v; }
int main(int argc, char** argv) {
  long period_ns = atol(argv[1]) * 1000;
  printf("%p %p\n", (void*)&watched, (void*)stats); fflush(stdout);
  struct timespec next; clock_gettime(CLOCK_MONOTONIC, &next);
  for (;;) {
    uint64_t t0 = now(); store_field(t0); uint64_t t1 = now();
    stats[0]++; stats[1] += t1 - t0; if (t1 - t0 > stats[2]) stats[2] = t1 - t0;
    next.tv_nsec += period_ns;
    while (next.tv_nsec >= 1000000000) { next.tv_nsec -= 1000000000; next.tv_sec++; }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
  }
}
"""


def build_writer(tmp: Path) -> Path:
    src, exe = tmp / "writer.c", tmp / "writer"
    src.write_text(WRITER_C)
    subprocess.run([shutil.which("cc") or "gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-o", str(exe), str(src)],
                   check=True)
    return exe


class Writer:
    def __init__(self, exe: Path, period_us: int) -> None:
        self.proc = subprocess.Popen([str(exe), str(period_us)], stdout=subprocess.PIPE, text=True)
        a, s = self.proc.stdout.readline().split()
        self.pid, self.watched, self.stats_addr = self.proc.pid, int(a, 16), int(s, 16)

    def stats(self) -> tuple[int, int, int]:
        return struct.unpack("<QQQ", read_memory(self.pid, self.stats_addr, 24))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def store_cost(w: Writer, run) -> dict:
    """Run ``run()`` and return the writer's mean store time and stores during it."""
    n0, s0, _ = w.stats()
    extra = run()
    n1, s1, mx = w.stats()
    n = n1 - n0
    return {"stores": n, "mean_store_ns": (s1 - s0) / n if n else None, "max_store_ns": mx, **(extra or {})}


def phase_baseline(w: Writer, hits: int, period_us: int) -> dict:
    return store_cost(w, lambda: time.sleep(hits * period_us / 1e6))


WARM = 10  # hits before the steady-state window: start-up (perf record, first symbolisation) is not per-hit cost


def phase_perf_event_open(w: Writer, hits: int, period_us: int) -> dict:
    """Steady state between the WARM-th and the last reported hit: every store in it is watched."""
    spec = WatchSpec(w.watched, 8, "write", "watched")
    lags: list[float] = []
    snap: dict = {}
    with PerfWatch(w.pid, spec, max_rate=0) as pw:
        for i, hit in enumerate(pw.hits(timeout=(hits + WARM) * period_us / 1e6 * 5 + 5)):
            if i == WARM:
                snap["s0"], snap["c0"] = w.stats(), time.process_time()
            if i > WARM:
                lags.append(hit.extra["report_lag_s"])
            if i >= hits + WARM:
                snap["s1"], snap["c1"] = w.stats(), time.process_time()
                break
    return _steady(snap, lags) | {"hftmem_cpu_us_per_hit": (snap["c1"] - snap["c0"]) / len(lags) * 1e6}


def _steady(snap: dict, lags: list[float]) -> dict:
    (n0, s0, _), (n1, s1, mx) = snap["s0"], snap["s1"]
    return {"stores": n1 - n0, "mean_store_ns": (s1 - s0) / (n1 - n0), "max_store_ns": mx, "reported": len(lags),
            "report_latency_ms_median": statistics.median(lags) * 1e3,
            "report_latency_ms_p90": statistics.quantiles(lags, n=10)[-1] * 1e3}


def _proc_cpu_s(pid: int) -> float:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return 0.0


def phase_perf_tool(w: Writer, hits: int, period_us: int) -> dict:
    """`perf record -e mem:ADDR/8:w -g --no-buffering -o - | stdbuf -oL perf script`: the tool stream."""
    perf = shutil.which("perf")
    lags: list[float] = []
    snap: dict = {}
    rec = subprocess.Popen([perf, "record", "-q", "-e", f"mem:{w.watched:#x}/8:w", "-g", "--no-buffering",
                            "-k", "CLOCK_MONOTONIC", "-p", str(w.pid), "-o", "-"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    script_cmd = [perf, "script", "-i", "-", "-F", "tid,time,ip,sym"]
    if shutil.which("stdbuf"):
        script_cmd = ["stdbuf", "-oL", *script_cmd]  # else perf script block-buffers into the pipe
    scr = subprocess.Popen(script_cmd, stdin=rec.stdout, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    rec.stdout.close()
    timer = threading.Timer((hits + WARM) * period_us / 1e6 * 5 + 10, scr.kill)
    timer.start()
    cpu = lambda: _proc_cpu_s(rec.pid) + _proc_cpu_s(scr.pid)  # noqa: E731
    try:
        i = 0
        for line in scr.stdout:
            parts = line.split()
            # "  1234 19147.543543:  7f... store_field" then the -g call chain on following lines
            stamp = next((p for p in parts if p.endswith(":") and p[:-1].replace(".", "").isdigit()), None)
            if stamp is None:
                continue
            if i == WARM:
                snap["s0"], snap["c0"] = w.stats(), cpu()
            if i > WARM:
                lags.append(time.monotonic() - float(stamp[:-1]))
            if i >= hits + WARM:
                snap["s1"], snap["c1"] = w.stats(), cpu()
                break
            i += 1
    finally:
        timer.cancel()
        for p in (rec, scr):
            p.terminate()
        for p in (rec, scr):
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return _steady(snap, lags) | {"perf_processes_cpu_us_per_hit": (snap["c1"] - snap["c0"]) / len(lags) * 1e6}


def phase_gdb(w: Writer, hits: int, period_us: int, tmp: Path) -> dict:
    """gdb -batch -p PID: a hardware watchpoint whose commands count and continue, then detach."""
    script = tmp / "watch.gdb"
    script.write_text(f"""set pagination off
set confirm off
set $n = 0
watch -l *(unsigned long *){w.watched:#x}
commands
silent
set $n = $n + 1
if $n < {hits}
continue
end
end
continue
detach
quit
""")
    out = {}

    def run():
        t0 = time.monotonic()
        r = subprocess.run(["gdb", "-nx", "-batch", "-p", str(w.pid), "-x", str(script)], capture_output=True,
                           text=True, timeout=hits * 0.05 + 60)
        out.update(gdb_wall_s=time.monotonic() - t0, gdb_rc=r.returncode)
        return out
    r = store_cost(w, run)
    r["hits"] = hits  # the script stops after exactly this many; stores before attach are unwatched
    status = Path(f"/proc/{w.pid}/status").read_text()
    r["tracer_after"] = next(ln.split()[1] for ln in status.splitlines() if ln.startswith("TracerPid"))
    return r


def phase_engine(hits_s: float = 2.0) -> dict | None:
    """Extra CPU of the demo engine's producer thread while hftmem_engine_stats.ticks is watched."""
    from hftmem_tui.sources.engine import find_engine, start_engine

    try:
        proc = start_engine([], binary=find_engine())
    except Exception as exc:  # noqa: BLE001 - a benchmark prints what it could not do
        return {"error": str(exc)}
    pid = proc.pid
    try:
        time.sleep(0.5)
        tid = next(int(t) for t in os.listdir(f"/proc/{pid}/task")
                   if Path(f"/proc/{pid}/task/{t}/comm").read_text().strip() == "hftmem-md")

        def run_ns() -> int:
            return int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])

        b0 = run_ns()
        time.sleep(hits_s)
        base = run_ns() - b0
        spec = resolve_target(pid, "hftmem_engine_stats.ticks")
        with PerfWatch(pid, spec, max_rate=0) as pw:
            w0 = run_ns()
            n = 0
            end = time.monotonic() + hits_s
            for _ in pw.hits(timeout=hits_s):
                n += 1
                if time.monotonic() > end:
                    break
            watched = run_ns() - w0
            counted = pw.stats.counted
        return {"producer_cpu_ms_per_s_base": base / hits_s / 1e6, "producer_cpu_ms_per_s_watched": watched / hits_s / 1e6,
                "hits": counted, "cost_us_per_hit": (watched - base) / max(1, counted) / 1e3}
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hits", type=int, default=300)
    ap.add_argument("--period-us", type=int, default=1000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-engine", action="store_true")
    args = ap.parse_args()
    results: dict = {"kernel": os.uname().release, "cpus": os.cpu_count(), "hits": args.hits,
                     "period_us": args.period_us}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        w = Writer(build_writer(tmp), args.period_us)
        try:
            time.sleep(0.2)
            results["baseline"] = phase_baseline(w, args.hits, args.period_us)
            results["perf_event_open"] = phase_perf_event_open(w, args.hits, args.period_us)
            results["perf_tool"] = phase_perf_tool(w, args.hits, args.period_us)
            results["gdb"] = phase_gdb(w, args.hits, args.period_us, tmp)
            results["baseline_after"] = phase_baseline(w, args.hits, args.period_us)
        finally:
            w.close()
    if not args.no_engine:
        results["engine_ticks_perf_event_open"] = phase_engine()
    base = statistics.mean([results["baseline"]["mean_store_ns"], results["baseline_after"]["mean_store_ns"]])
    for k in ("perf_event_open", "perf_tool", "gdb"):
        r = results[k]
        hits = r.get("hits", r["stores"])  # steady windows: every store is a hit
        r["cost_us_per_hit"] = (r["mean_store_ns"] - base) * r["stores"] / hits / 1e3
    g, p = results["gdb"]["cost_us_per_hit"], results["perf_event_open"]["cost_us_per_hit"]
    results["gdb_over_perf_ratio"] = g / p if g and p else None
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f"kernel {results['kernel']}, {results['cpus']} CPUs, {args.hits} hits, one store every {args.period_us} us")
    print(f"unwatched store: {base:.0f} ns")
    for k, label in (("perf_event_open", "perf_event_open (hftmem)"), ("perf_tool", "perf record | perf script"),
                     ("gdb", "gdb watch + commands/continue")):
        r = results[k]
        extra = ""
        if "report_latency_ms_median" in r and r["report_latency_ms_median"] is not None:
            extra += f", report latency median {r['report_latency_ms_median']:.2f} ms"
        if "hftmem_cpu_us_per_hit" in r:
            extra += f", inspector CPU {r['hftmem_cpu_us_per_hit']:.0f} us/hit"
        if "perf_processes_cpu_us_per_hit" in r:
            extra += f", perf processes CPU {r['perf_processes_cpu_us_per_hit']:.0f} us/hit"
        print(f"{label:<30} cost to the target {r['cost_us_per_hit']:8.1f} us/hit  ({r['stores']} stores{extra})")
    if results["gdb_over_perf_ratio"]:
        print(f"gdb / perf_event_open cost per hit: {results['gdb_over_perf_ratio']:.0f}x")
    e = results.get("engine_ticks_perf_event_open")
    if e and "cost_us_per_hit" in e:
        print(f"engine producer thread, ticks watched: {e['producer_cpu_ms_per_s_base']:.1f} -> "
              f"{e['producer_cpu_ms_per_s_watched']:.1f} ms CPU/s over {e['hits']} hits = {e['cost_us_per_hit']:.1f} us/hit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
