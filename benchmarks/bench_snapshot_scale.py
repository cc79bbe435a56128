"""CPU of `hftmem snapshot` at 5,000 and 50,000 mappings, beside `cat /proc/PID/smaps` and `pmap -x PID`.

    .venv/bin/python benchmarks/bench_snapshot_scale.py --fast [--sizes 5000,50000]

One pyperf run, one live helper per size (tests/fixtures/many_mappings.py), every contender on
the same pid in turn. What is timed is CPU (user + system) of the whole job, not wall time: the
kernel's page-table walk and text formatting for smaps are charged to the reader, so
`cat /proc/PID/smaps > /dev/null` is the floor every smaps reader pays, and the goal (issue 17)
is hftmem <= 2x that floor and below `pmap -x`.

- `cat smaps`, `pmap -x`: subprocesses, output to /dev/null (their children's rusage).
- `hftmem snapshot` (in process): what the command does after start-up, engine off (the helper
  is not an engine) and perf off: take_snapshot (status, stat, sched, psutil, smaps_rollup,
  every mapping) + the text form + its one write to /dev/null. `--python` rows: the same with
  the native parser and formatter switched off (the fallback, and the "before").
- `full sample` (in process): LiveSampler.sample(full=True), what the TUI and `record` read
  every smaps cycle, on a sampler started once.
- `--numa`: the snapshot with numa_maps as well (`hftmem snapshot --numa`).
- `as before`: what the command did before issue 17 (Python parser, numa_maps always, one
  print() per line), for the before/after ratio in one run.

At the end (parent process) a table of ratios to `cat smaps` is printed for BENCHMARKS.md.
"""

from __future__ import annotations

import atexit
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pyperf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hftmem_tui.commands.snapshot import snapshot_text  # noqa: E402
from hftmem_tui.feeds.sampler import LiveSampler  # noqa: E402
from hftmem_tui.feeds.snapshot import take_snapshot  # noqa: E402
from hftmem_tui.sources.procfs import maps as procfs_maps  # noqa: E402

HELPER = ROOT / "tests" / "fixtures" / "many_mappings.py"


def start_helper(count: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(HELPER), str(count)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    if not proc.stdout.readline().startswith("ready"):
        proc.kill()
        raise SystemExit("many_mappings helper did not start")

    def stop() -> None:
        proc.stdin.close()
        proc.wait(timeout=10)

    atexit.register(stop)
    return proc


def child_cpu(loops: int, cmd: list[str]) -> float:
    """CPU seconds (user + system) of ``loops`` runs of ``cmd``, output to /dev/null."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(loops):
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def own_cpu(loops: int, fn, *args) -> float:
    """CPU seconds of this process for ``loops`` calls of fn(*args)."""
    t0 = time.process_time()
    for _ in range(loops):
        fn(*args)
    return time.process_time() - t0


def snapshot_to_devnull(pid: int, numa: bool = False) -> None:
    snap = take_snapshot(pid, perf_ms=None, engine=False, numa=numa)
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        os.write(fd, snapshot_text(snap).encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)


def before_snapshot(pid: int) -> None:
    """What `hftmem snapshot` did before issue 17: Python parser, numa_maps read, print() per line."""
    snap = python_only(take_snapshot)(pid, perf_ms=None, engine=False, numa=True)
    with open(os.devnull, "w") as out:
        for line in snapshot_text(snap).split("\n"):
            print(line, file=out)


def python_only(fn):
    """fn with the native parser and formatter switched off (maps.py's fallback)."""
    def run(*args, **kwargs):
        saved = procfs_maps._native_parse, procfs_maps._native_rows
        procfs_maps._native_parse = procfs_maps._native_rows = None
        try:
            return fn(*args, **kwargs)
        finally:
            procfs_maps._native_parse, procfs_maps._native_rows = saved
    return run


def main() -> None:
    def pass_pids(cmd: list[str], args) -> None:
        cmd.extend(["--pids", args.pids, "--sizes", args.sizes])

    runner = pyperf.Runner(add_cmdline_args=pass_pids)
    runner.argparser.add_argument("--sizes", default="5000,50000")
    runner.argparser.add_argument("--pids", default=None, help=argparse_hidden())
    args = runner.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.pids is None:  # the parent: one helper per size for every worker
        args.pids = ",".join(str(start_helper(n).pid) for n in sizes)
    pids = [int(p) for p in args.pids.split(",")]

    results: dict[tuple[int, str], object] = {}
    for n, pid in zip(sizes, pids):
        sampler = LiveSampler(pid, perf=False, engine=False)
        atexit.register(sampler.close)
        contenders = {
            "cat /proc/PID/smaps": (child_cpu, ["cat", f"/proc/{pid}/smaps"]),
            "pmap -x PID": (child_cpu, ["pmap", "-x", str(pid)]),
            "hftmem snapshot (in process)": (own_cpu, snapshot_to_devnull, pid),
            "hftmem snapshot --numa (in process)": (own_cpu, snapshot_to_devnull, pid, True),
            "hftmem full sample (TUI, record)": (own_cpu, lambda: sampler.sample(full=True)),
            "hftmem snapshot, Python parser (the fallback)": (own_cpu, python_only(snapshot_to_devnull), pid),
            "hftmem snapshot as before (Python parser, numa_maps, print per line)": (own_cpu, before_snapshot, pid),
        }
        for label, (timer, *targs) in contenders.items():
            results[(n, label)] = runner.bench_time_func(f"{label}, {n:,} mappings, CPU", timer, *targs)

    if not runner.args.worker and all(r is not None for r in results.values()):
        print_ratios(sizes, results)


def argparse_hidden() -> str:
    return "(internal) helper pids, one per size, passed from the parent to the workers"


def print_ratios(sizes: list[int], results: dict) -> None:
    print("\n| contender | " + " | ".join(f"{n:,} mappings: CPU ms (x cat)" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    labels = sorted({label for _, label in results}, key=[label for _, label in results].index)
    for label in labels:
        cells = []
        for n in sizes:
            ms = results[(n, label)].mean() * 1e3
            cat = results[(n, "cat /proc/PID/smaps")].mean() * 1e3
            cells.append(f"{ms:.1f} ({ms / cat:.2f}x)")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
