"""A snapshot: one sample of the live sampler at full cadence (`hftmem snapshot`), and its JSON.

Nothing here traces or stops the target: /proc reads, psutil, one perf interval, and
process_vm_readv of the engine's stats block (symbols come from gdb on the executable file).
"""

from __future__ import annotations

import dataclasses

from hftmem_tui.feeds.sample import PerfInterval, Sample
from hftmem_tui.feeds.sampler import LiveSampler
from hftmem_tui.model.allocconfig import AllocatorSpec
from hftmem_tui.sources import procfs
from hftmem_tui.sources.perf.stat import DEFAULT_EVENTS

_MAPPING_FIELDS = tuple(f.name for f in dataclasses.fields(procfs.Mapping))
PERF_WAIT_S = 10.0  # perf reports an interval, or its stall error, well within this


def take_snapshot(pid: int, *, perf_ms: int | None = 200, engine: bool = True,
                  allocators: tuple[AllocatorSpec, ...] | None = None, numa: bool = False) -> Sample:
    """Sample every source once: every mapping, rollup, one ``perf_ms`` perf interval, engine
    stats and allocators; numa_maps only with ``numa`` (a second walk of every page table:
    ``Sample.numa`` stays None without it). The target must exist (NoSuchProcess, ZombieProcess,
    KernelThread, AccessDenied otherwise); perf and the engine block are optional and explain
    their absence in ``notes``.

    ``allocators``: the allocator globals to read (model.allocconfig.load_allocators); None
    reads the demo engine's own. With a description, a process that is not the demo engine
    still gets its allocators (the demo stats block is then simply noted as absent).
    """
    interval_s = (perf_ms or 200) / 1000
    with LiveSampler(pid, interval_s=interval_s, perf=bool(perf_ms), engine=engine,
                     allocators=allocators, numa=numa) as sampler:
        if sampler.perf is not None:
            sampler.perf.wait(PERF_WAIT_S)  # also spaces the two cpu_percent reads by one interval
        sample = sampler.sample(full=True)
        notes = sampler.notes + list(sample.notes)
    # perf's note first, as `hftmem snapshot` always printed it
    notes.sort(key=lambda n: not n.startswith("perf:"))
    return dataclasses.replace(sample, notes=tuple(notes))


def _perf_json(p: PerfInterval) -> dict:
    """PerfSample's shape: every event perf reported, None for the ones it could not count."""
    events = set(p.values) | p.unsupported | p.not_counted
    order = {e: i for i, e in enumerate(DEFAULT_EVENTS)}
    return {"timestamp_s": p.timestamp_s,
            "values": {e: p.values.get(e) for e in sorted(events, key=lambda e: (order.get(e, len(order)), e))},
            "unsupported": sorted(p.unsupported), "not_counted": sorted(p.not_counted)}


def snapshot_json(s: Sample) -> dict:
    """Plain JSON-ready dict of a snapshot (what `hftmem snapshot --json` prints): pid, time,
    status, stat, sched, process, rollup, mappings (with the pmap -x derived columns), numa
    (null unless asked for), perf, engine, allocators, notes."""
    asdict = dataclasses.asdict
    sched = asdict(s.sched)
    sched["affinity"] = sorted(sched["affinity"])
    d = {"pid": s.pid, "time": s.time, "status": asdict(s.status), "stat": asdict(s.stat), "sched": sched,
         "process": asdict(s.process), "rollup": asdict(s.rollup) if s.rollup is not None else None,
         # asdict() deep-copies field by field: 23 s for 100,000 mappings. Mappings hold only
         # scalars, so they are read attribute by attribute instead (0.5 s).
         "mappings": [{**{f: getattr(m, f) for f in _MAPPING_FIELDS}, "mode": m.mode, "name": m.name,
                       "kind": m.kind, "dirty_kb": m.dirty_kb} for m in s.mappings or ()],
         "numa": [asdict(n) for n in s.numa] if s.numa is not None else None,
         "perf": _perf_json(s.perf) if s.perf is not None else None,
         "engine": None, "allocators": [asdict(a) for a in s.allocators], "notes": list(s.notes)}
    if s.engine is not None:
        e = d["engine"] = asdict(s.engine)
        e["magic"] = s.engine.magic.decode("ascii", "replace")
        e["active_scenarios"] = list(s.engine.active_scenarios)
    return d
