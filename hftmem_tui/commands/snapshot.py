"""`hftmem snapshot`: one sample of every source, headless and zero-stop, as text or JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from hftmem_tui.commands.progress_line import ProgressLine
from hftmem_tui.feeds.sample import Sample
from hftmem_tui.feeds.snapshot import snapshot_json, take_snapshot
from hftmem_tui.model.allocconfig import load_allocators
from hftmem_tui.sources.procfs.maps import pmap_rows
from hftmem_tui.textsafe import visible


def run(args: argparse.Namespace) -> int:
    """Print one snapshot of ``args.pid`` on stdout (``--json``: one JSON object); 0. Raises the
    typed errors of take_snapshot (bad target) and of load_allocators (bad ``--allocators``)."""
    specs = load_allocators(args.allocators) if args.allocators else None  # a bad file fails before any read
    line = ProgressLine()  # a huge process takes seconds to walk: say so, on a terminal only
    line.update(f"snapshot of pid {args.pid}: reading every mapping (smaps){'' if args.no_perf else ' and 200 ms of perf'}")
    try:
        snap = take_snapshot(args.pid, perf_ms=None if args.no_perf else 200, allocators=specs,
                             numa=getattr(args, "numa", False))
    finally:
        line.clear()
    if args.json:
        # One write: json.dump() writes chunk by chunk (10 s for 100,000 mappings into a pipe).
        sys.stdout.write(json.dumps(snapshot_json(snap), separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(snapshot_text(snap))  # one write (print() made one or two per line)
    sys.stdout.flush()
    return 0


def snapshot_text(snap: Sample) -> str:
    """The text form: the target, its memory and faults, perf, engine, allocators, notes, and
    the mapping table as pmap -x columns (and pages per NUMA node when they were read). Names from the target go through visible()."""
    out: list[str] = []
    add = out.append  # every line, joined and written once at the end
    st, roll = snap.status, snap.rollup
    assert roll is not None and snap.mappings is not None  # a snapshot reads every part
    add(f"pid {snap.pid} {visible(st.name)}  state {st.state}  threads {st.threads}  TracerPid {st.tracer_pid}  "
        f"cpu {snap.process.cpu_percent:.0f}%  policy {snap.sched.policy}")
    add(f"VmRSS {st.vm_rss_kb} kB  VmHWM {st.vm_hwm_kb} kB  VmSwap {st.vm_swap_kb} kB  "
        f"Pss {roll.pss_kb} kB  faults minor {snap.stat.minflt} major {snap.stat.majflt}")
    if snap.perf is not None:
        counted = "  ".join(f"{k} {v:.0f}" for k, v in snap.perf.values.items() if v is not None)
        add(f"perf ({snap.perf.timestamp_s:.1f} s): {counted}")
        if snap.perf.unsupported:
            add(f"perf not supported here: {', '.join(sorted(snap.perf.unsupported))}")
    if snap.engine is not None:
        e = snap.engine
        add(f"engine ticks {e.ticks}  pool {e.pool_live}/{e.pool_capacity} (hw {e.pool_high_water})  "
            f"arena {e.arena_used}/{e.arena_capacity}  ring {e.ring_depth}/{e.ring_capacity}  "
            f"max gap {e.last_max_gap_ns} ns  p99.9 {e.last_p999_gap_ns} ns  "
            f"scenarios {visible(','.join(e.active_scenarios)) or '-'}")
    for a in snap.allocators:
        shown = "  ".join(f"{k} {'-' if v is None else v}" for k, v in dataclasses.asdict(a).items() if k != "symbol")
        add(f"  {visible(a.symbol)}: {shown}")
    for note in snap.notes:
        add(visible(note))
    for n in snap.numa or ():
        add(f"numa node {n.node}: {n.pages} pages ({n.kb} kB, {n.anon_pages} anon) in {n.mappings} mappings")
    add(f"{'Address':<16} {'Kbytes':>9} {'RSS':>9} {'Dirty':>9} {'Swap':>7} {'Mode':<5}  Mapping")
    maps = snap.mappings
    rows = visible(pmap_rows(maps), newlines=True)  # names are the target's; the kernel escapes their newlines
    sizes = sum([m.size_kb for m in maps])
    rss = sum([m.rss_kb for m in maps])
    dirty = sum([m.shared_dirty_kb for m in maps]) + sum([m.private_dirty_kb for m in maps])
    total = f"{'total kB':<16} {sizes:>9} {rss:>9} {dirty:>9}"
    return "\n".join(out) + "\n" + rows + total + "\n"
