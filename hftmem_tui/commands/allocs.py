"""`hftmem allocs`: per-thread allocator calls through uprobes, headless; alarms for hot threads
that allocate after warm-up, with the call chains of their first offenders.

The probes (hftmem_tui/probes/) are removed on every way out: the with block on return and on
SIGTERM/SIGHUP (they unwind like an exception), the uprobe group's guardian on SIGKILL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from hftmem_tui.commands.progress_line import ProgressLine
from hftmem_tui.errors import SourceError
from hftmem_tui.model.allocalarm import AllocReport, build_report, cpu_fractions, suggest_hot, window
from hftmem_tui.probes import ALLOC_FUNCTIONS, AllocProbes, Offender, ProbeSpec, thread_cpu_ticks
from hftmem_tui.sources import procfs
from hftmem_tui.sources.perf.calibration import cost_per_call
from hftmem_tui.sources.shutdown import paced, unwind_on_hangup
from hftmem_tui.textsafe import visible

__all__ = ["run", "run_allocs"]


def run(args: argparse.Namespace) -> int:
    """``hftmem allocs PID [--duration S] [--warmup S] [--hot TID,...|auto] [--json]`` (see run_allocs)."""
    return run_allocs(args.pid, duration=args.duration, warmup=args.warmup, hot=args.hot, as_json=args.json)


def run_allocs(pid: int, *, duration: float, warmup: float, hot: list[int] | str | None, as_json: bool) -> int:
    """Count for ``warmup`` then ``duration`` seconds and print the report (``as_json``: one JSON
    object); ``hot`` is TIDs, "auto" (the busiest threads) or None. Returns the exit status.
    Raises SourceError (no such process, not root, tracefs missing, a --hot TID not of ``pid``)."""
    procfs.check_target(pid)
    clk = os.sysconf("SC_CLK_TCK")
    # SIGTERM/SIGHUP unwind like an exception, so the probes are removed on the way out.
    with unwind_on_hangup():
        with AllocProbes(pid) as probes:
            cost = cost_per_call()
            cpu0, t0 = thread_cpu_ticks(pid), time.monotonic()
            _wait(probes, warmup, f"allocs pid {pid}: warm-up")
            cpu1, t1 = thread_cpu_ticks(pid), time.monotonic()
            warm_cpu = cpu_fractions(cpu0, cpu1, t1 - t0, clk)
            hot_tids = _hot_threads(pid, hot, warm_cpu, cpu1)
            before, t1 = probes.counts(), time.monotonic()
            _wait(probes, duration, f"allocs pid {pid}: counting allocator calls")
            after, t2, cpu2 = probes.counts(), time.monotonic(), thread_cpu_ticks(pid)
            report = build_report(window(before, after), probes.thread_names, t2 - t1, hot_tids,
                                  cpu=cpu_fractions(cpu1, cpu2, t2 - t1, clk), cost_per_call_s=cost,
                                  notes=tuple(probes.notes))
            offenders = probes.sample_offenders([a.tid for a in report.alarms]) if report.alarms else []
            specs = probes.specs
    if as_json:
        json.dump(_allocs_json(pid, warmup, report, offenders, specs, warm_cpu), sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
        return 0
    _print_allocs(pid, warmup, report, offenders, specs, warm_cpu)
    return 0


def _hot_threads(pid: int, hot: list[int] | str | None, warm_cpu: dict[int, float],
                 threads: dict[int, tuple[str, int]]) -> list[int]:
    if hot == "auto":
        return suggest_hot(warm_cpu)
    hot = hot or []
    unknown = [t for t in hot if t not in threads]
    if unknown:
        raise SourceError(f"not a thread of process {pid}: {','.join(map(str, unknown))} "
                          f"(threads: {','.join(map(str, sorted(threads)))})")
    return hot


def _wait(probes: AllocProbes, seconds: float, label: str) -> None:
    end = time.monotonic() + seconds
    line = ProgressLine()  # on a terminal only: the report on stdout stays as it was
    try:
        for _ in paced(0.25, until=end):
            probes.refresh_threads()  # threads created meanwhile get counters too
            line.update(f"{label} {seconds - max(0.0, end - time.monotonic()):.1f}/{seconds:g} s")
        time.sleep(max(0.0, end - time.monotonic()))  # the window ends at `end`, not on a beat
    finally:
        line.clear()


def _allocs_json(pid: int, warmup: float, report: AllocReport, offenders: list[Offender], specs: list[ProbeSpec],
                 warm_cpu: dict[int, float]) -> dict:
    return {
        "pid": pid, "seconds": report.seconds, "warmup_s": warmup, "hot": list(report.hot),
        "threads": [{"tid": t.tid, "name": t.name, "cpu_fraction": t.cpu_fraction, "hot": t.hot,
                     "calls": t.calls, "rate_hz": t.rate_hz} for t in report.threads],
        "alarms": [{"tid": a.tid, "name": a.name, "calls": a.calls, "rate_hz": a.rate_hz,
                    "offenders": [{"function": o.function, "count": o.count, "frames": [str(f) for f in o.frames]}
                                  for o in offenders if o.tid == a.tid]} for a in report.alarms],
        "calls_per_s": report.calls_per_s, "cost_per_call_s": report.cost_per_call_s,
        "cost_fraction": report.cost_fraction, "notes": list(report.notes),
        "probes": [{"function": s.function, "symbol": s.symbol, "path": s.path, "where": s.where} for s in specs],
        "warmup_cpu_fraction": {str(k): v for k, v in warm_cpu.items()},
    }  # fmt: skip


def _print_allocs(pid: int, warmup: float, report: AllocReport, offenders: list[Offender], specs: list[ProbeSpec],
                  warm_cpu: dict[int, float]) -> None:
    where = sorted({visible(f"{s.where} ({os.path.basename(s.path)})") for s in specs})
    print(f"allocator calls per second in process {pid} over {report.seconds:.1f} s after a "
          f"{warmup:g} s warm-up (uprobes on {', '.join(where)}; no ptrace)")
    shown = [f for f in ALLOC_FUNCTIONS if any(t.calls.get(f) for t in report.threads)] or ["malloc", "free"]
    print(f"{'TID':>8}  {'THREAD':<16} {'CPU':>5}  " + "  ".join(f"{f + '/s':>10}" for f in shown) + "  HOT")
    for t in report.threads:
        cpu = f"{t.cpu_fraction * 100:.0f}%" if t.cpu_fraction is not None else "?"
        print(f"{t.tid:>8}  {visible(t.name)[:16]:<16} {cpu:>5}  " + "  ".join(f"{t.rate(f):>10,.0f}" for f in shown)
              + ("    *" if t.hot else ""))
    for note in report.notes:
        print(f"note: {visible(note)}")
    if report.cost_per_call_s is not None:
        print(f"probe cost: {report.calls_per_s:,.0f} calls/s x {report.cost_per_call_s * 1e6:.1f} us per call = "
              f"{report.cost_fraction * 100:.1f}% of a core (measured on this machine)")
    if not report.hot:
        busiest = suggest_hot(warm_cpu)
        names = {t.tid: t.name for t in report.threads}
        if busiest:
            print("busiest threads (hot-path candidates): " + ", ".join(
                f"{t} {visible(names.get(t, '?'))} ({warm_cpu.get(t, 0) * 100:.0f}% of a core)" for t in busiest)
                + f"; mark them with --hot auto or --hot {','.join(map(str, busiest))}")
        return
    if not report.alarms:
        print(f"no alarm: hot threads {', '.join(str(t) for t in report.hot)} made no allocator call after warm-up")
        return
    _print_alarms(report, offenders)


def _print_alarms(report: AllocReport, offenders: list[Offender]) -> None:
    for alarm in report.alarms:
        print(visible(str(alarm)))
        mine = sorted((o for o in offenders if o.tid == alarm.tid), key=lambda o: -o.count)
        if mine:
            print("  first offenders (call chains sampled briefly on this thread):")
        for o in mine:
            print(f"    {visible(o.function)} x{o.count}")
            for i, f in enumerate(o.frames[:12]):
                print(f"      #{i} {visible(str(f))}")
