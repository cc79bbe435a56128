"""pyperf benchmarks of the procfs samplers, against a live helper with 5,000 mappings.

    python benchmarks/bench_procfs.py --fast

Compares our smaps read+parse with `pmap -x PID` (a subprocess on the same pid), and shows how
cheap /proc/PID/status is (no page-table walk) next to smaps_rollup.
"""

from __future__ import annotations

import atexit
import gzip
import os
import subprocess
import sys
from pathlib import Path

import pyperf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hftmem_tui.sources import procfs
from hftmem_tui.feeds.snapshot import take_snapshot  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "proc" / "smaps_many.gz"
HELPER = ROOT / "tests" / "fixtures" / "many_mappings.py"


def start_helper(count: int = 5000) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(HELPER), str(count)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        proc.kill()
        raise SystemExit(f"helper did not start: {line!r}")

    def stop() -> None:
        proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    atexit.register(stop)
    return proc


def bench_pmap(loops: int, pid: int) -> float:
    t0 = pyperf.perf_counter()
    for _ in range(loops):
        subprocess.run(["pmap", "-x", str(pid)], stdout=subprocess.DEVNULL, check=True, timeout=30)
    return pyperf.perf_counter() - t0


def _full_sample(pid: int):
    # Everything `hftmem snapshot --no-perf` reads: status, stat, sched, psutil, rollup, every mapping.
    return take_snapshot(pid, perf_ms=None, engine=False)


def main() -> None:
    runner = pyperf.Runner()
    runner.parse_args()
    text = gzip.open(FIXTURE, "rt").read()
    # pyperf re-runs this script in worker processes: each worker starts (and stops) its own helper.
    helper = start_helper() if runner.args.worker else None
    pid = helper.pid if helper else os.getpid()
    runner.bench_func("parse_smaps (fixture, 5,000 mappings)", procfs.parse_smaps, text)
    runner.bench_func("read+parse smaps (live, 5,000 mappings)", procfs.read_smaps, pid)
    runner.bench_func("read smaps_rollup (live, 5,000 mappings)", procfs.read_smaps_rollup, pid)
    runner.bench_func("read /proc/PID/status (live)", procfs.read_status, pid)
    runner.bench_func("full snapshot, no perf (live, 5,000 mappings)", _full_sample, pid)
    runner.bench_time_func("pmap -x PID (subprocess, live, 5,000 mappings)", bench_pmap, pid)


if __name__ == "__main__":
    main()
