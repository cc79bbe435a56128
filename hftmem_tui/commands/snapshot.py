"""`hftmem snapshot`: one sample of every source, headless and zero-stop, as text or JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from hftmem_tui.commands.progress import ProgressLine
from hftmem_tui.feeds.sample import Sample
from hftmem_tui.feeds.snapshot import snapshot_json, take_snapshot
from hftmem_tui.model.allocconfig import load_allocators


def run(args: argparse.Namespace) -> int:
    """Print one snapshot of ``args.pid`` on stdout (``--json``: one JSON object); 0. Raises the
    typed errors of take_snapshot (bad target) and of load_allocators (bad ``--allocators``)."""
    specs = load_allocators(args.allocators) if args.allocators else None  # a bad file fails before any read
    line = ProgressLine()  # a huge process takes seconds to walk: say so, on a terminal only
    line.update(f"snapshot of pid {args.pid}: reading every mapping (smaps){'' if args.no_perf else ' and 200 ms of perf'}")
    try:
        snap = take_snapshot(args.pid, perf_ms=None if args.no_perf else 200, allocators=specs)
    finally:
        line.clear()
    if args.json:
        # One write: json.dump() writes chunk by chunk (10 s for 100,000 mappings into a pipe).
        sys.stdout.write(json.dumps(snapshot_json(snap), separators=(",", ":")) + "\n")
        return 0
    print_snapshot(snap)
    return 0


def print_snapshot(snap: Sample) -> None:
    """The text form: the target, its memory and faults, perf, engine, allocators, notes, and
    the mapping table as pmap -x columns."""
    st, roll = snap.status, snap.rollup
    assert roll is not None and snap.mappings is not None  # a snapshot reads every part
    print(f"pid {snap.pid} {st.name}  state {st.state}  threads {st.threads}  TracerPid {st.tracer_pid}  "
          f"cpu {snap.process.cpu_percent:.0f}%  policy {snap.sched.policy}")
    print(f"VmRSS {st.vm_rss_kb} kB  VmHWM {st.vm_hwm_kb} kB  VmSwap {st.vm_swap_kb} kB  "
          f"Pss {roll.pss_kb} kB  faults minor {snap.stat.minflt} major {snap.stat.majflt}")
    if snap.perf is not None:
        counted = "  ".join(f"{k} {v:.0f}" for k, v in snap.perf.values.items() if v is not None)
        print(f"perf ({snap.perf.timestamp_s:.1f} s): {counted}")
        if snap.perf.unsupported:
            print(f"perf not supported here: {', '.join(sorted(snap.perf.unsupported))}")
    if snap.engine is not None:
        e = snap.engine
        print(f"engine ticks {e.ticks}  pool {e.pool_live}/{e.pool_capacity} (hw {e.pool_high_water})  "
              f"arena {e.arena_used}/{e.arena_capacity}  ring {e.ring_depth}/{e.ring_capacity}  "
              f"max gap {e.last_max_gap_ns} ns  p99.9 {e.last_p999_gap_ns} ns  "
              f"scenarios {','.join(e.active_scenarios) or '-'}")
    for a in snap.allocators:
        shown = "  ".join(f"{k} {'-' if v is None else v}" for k, v in dataclasses.asdict(a).items() if k != "symbol")
        print(f"  {a.symbol}: {shown}")
    for note in snap.notes:
        print(note)
    print(f"{'Address':<16} {'Kbytes':>9} {'RSS':>9} {'Dirty':>9} {'Swap':>7} {'Mode':<5}  Mapping")
    for m in snap.mappings:
        print(f"{m.start:016x} {m.size_kb:>9} {m.rss_kb:>9} {m.dirty_kb:>9} {m.swap_kb:>7} {m.mode:<5}  {m.name}")
    print(f"{'total kB':<16} {sum(m.size_kb for m in snap.mappings):>9} {sum(m.rss_kb for m in snap.mappings):>9} "
          f"{sum(m.dirty_kb for m in snap.mappings):>9}")
