"""One sample of every source, zero-stop: what `hftmem snapshot` prints and `record` will append.

Nothing here traces or stops the target: /proc reads, psutil, a short `perf stat`, and
process_vm_readv of the engine's stats block (symbols come from gdb on the executable file).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from hftmem_tui.model.allocconfig import AllocatorSpec, specs_for
from hftmem_tui.model.allocators import ArenaView, FieldSpec, PoolView, RingView, counter_span, decode_view
from hftmem_tui.model.decode import EngineStats, decode_engine_stats
from hftmem_tui.sources import procfs
from hftmem_tui.errors import NoSuchProcess, NotAnEngine, SourceError, SymbolNotFound
from hftmem_tui.sources.memory import read_memory
from hftmem_tui.sources.perf.stat import PerfSample, PerfStream
from hftmem_tui.sources.process import ProcessInfo, ProcessProbe
from hftmem_tui.sources.symbols import SymbolTable

ENGINE_STATS_SYMBOL = "hftmem_engine_stats"
_MAPPING_FIELDS = tuple(f.name for f in dataclasses.fields(procfs.Mapping))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every source at one moment. Optional parts are None with the reason in ``notes``."""

    pid: int
    time: float
    status: procfs.Status
    stat: procfs.Stat
    sched: procfs.SchedInfo
    process: ProcessInfo
    rollup: procfs.Rollup
    mappings: tuple[procfs.Mapping, ...]
    numa: tuple[procfs.NumaNode, ...] | None
    perf: PerfSample | None
    engine: EngineStats | None
    allocators: tuple[PoolView | ArenaView | RingView, ...]
    notes: tuple[str, ...]

    def to_json(self) -> dict:
        """Plain JSON-ready dict; mappings also carry the pmap -x derived columns."""
        # asdict() deep-copies field by field: 23 s for 100,000 mappings. Mappings hold only
        # scalars, so they are read attribute by attribute instead (0.5 s).
        d = dataclasses.asdict(dataclasses.replace(self, mappings=()))
        d["mappings"] = [
            {**{f: getattr(m, f) for f in _MAPPING_FIELDS}, "mode": m.mode, "name": m.name, "kind": m.kind,
             "dirty_kb": m.dirty_kb}
            for m in self.mappings
        ]
        if self.perf is not None:
            d["perf"]["unsupported"] = sorted(self.perf.unsupported)
            d["perf"]["not_counted"] = sorted(self.perf.not_counted)
        if self.engine is not None:
            d["engine"]["magic"] = self.engine.magic.decode("ascii", "replace")
            d["engine"]["active_scenarios"] = list(self.engine.active_scenarios)
        d["sched"] = {k: (sorted(v) if isinstance(v, (set, frozenset)) else v) for k, v in d["sched"].items()}
        return d


def read_engine_stats(pid: int, table: SymbolTable | None = None) -> EngineStats:
    """Decode the demo engine's stats block from the live process, by field name.

    Raises NotAnEngine when the executable has no such block, NoDebugInfo, NoSuchProcess,
    UnmappedAddress.
    """
    own = table is None
    table = table or SymbolTable.for_pid(pid)
    try:
        try:
            sym = table.resolve(ENGINE_STATS_SYMBOL)
        except SymbolNotFound:
            raise NotAnEngine(f"process {pid} is not a hftmem demo engine (no {ENGINE_STATS_SYMBOL})") from None
        layout = table.layout(ENGINE_STATS_SYMBOL)
        data = read_memory(pid, table.runtime_address(sym, pid), layout.size)
        return decode_engine_stats(layout, data)
    finally:
        if own:
            table.close()


# The demo engine's allocator globals and what they are.
DEMO_ALLOCATORS = (("hftmem_order_pool", "pool"), ("hftmem_scratch_arena", "arena"),
                   ("hftmem_md_ring", "ring"), ("hftmem_md_ring_packed", "ring"))


DEMO_SPECS = specs_for(DEMO_ALLOCATORS)


def read_allocator(pid: int, table: SymbolTable, symbol: str, kind: str,
                   fields: dict[str, FieldSpec] | None = None) -> PoolView | ArenaView | RingView:
    """Read only the counters of one allocator global (a few hundred bytes) and decode them by name.

    ``fields`` (view counter -> FieldSpec) defaults to hftmem's own member names. Raises
    SymbolNotFound (no such global or member), NoDebugInfo, NoSuchProcess, UnmappedAddress.
    """
    sym = table.resolve(symbol)
    layout = table.layout(symbol)
    start, length = counter_span(layout, kind, fields)
    data = read_memory(pid, table.runtime_address(sym, pid) + start, length) if length else b""
    return decode_view(kind, symbol, layout, data, start, fields)


def read_allocators(pid: int, table: SymbolTable, specs: tuple[AllocatorSpec, ...] = DEMO_SPECS,
                    ) -> tuple[tuple[PoolView | ArenaView | RingView, ...], tuple[str, ...]]:
    """Views of every described allocator, and one note per allocator that could not be read.

    One missing symbol or member costs only its own gauge. Raises NoSuchProcess (the target
    is gone: no point reading the others).
    """
    views = []
    notes = []
    for spec in specs:
        try:
            views.append(read_allocator(pid, table, spec.symbol, spec.kind, spec.field_map))
        except NoSuchProcess:
            raise
        except SourceError as e:
            where = f" (line {spec.line})" if spec.line else ""
            notes.append(f"allocator {spec.symbol}{where}: {e}")
    return tuple(views), tuple(notes)


def _perf_sample(pid: int, interval_ms: int) -> PerfSample | None:
    with PerfStream(pid, interval_ms=interval_ms) as stream:
        for sample in stream.samples():
            return sample
    return None


def take_snapshot(pid: int, *, perf_ms: int | None = 200, engine: bool = True,
                  allocators: tuple[AllocatorSpec, ...] | None = None) -> Snapshot:
    """Sample every source once. The target must exist (typed errors otherwise); perf and the
    engine block are optional and explain their absence in ``notes``.

    ``allocators``: the allocator globals to read (model.allocconfig.load_allocators); None
    reads the demo engine's own. With a description, a process that is not the demo engine
    still gets its allocators (the demo stats block is then simply noted as absent).
    """
    status = procfs.check_target(pid)
    probe = ProcessProbe(pid)
    notes: list[str] = []
    perf = None
    if perf_ms:
        try:
            perf = _perf_sample(pid, perf_ms)  # also spaces the two cpu_percent calls by one interval
        except SourceError as e:  # perf missing, refused or silent: the rest of the sample stands
            notes.append(f"perf: {e}")
    stats = None
    views: tuple = ()
    if engine:
        try:
            with SymbolTable.for_pid(pid) as table:
                if allocators is None:
                    stats = read_engine_stats(pid, table)
                    views = tuple(read_allocator(pid, table, sym, kind) for sym, kind in DEMO_ALLOCATORS)
                else:
                    try:
                        stats = read_engine_stats(pid, table)
                    except NotAnEngine as e:
                        notes.append(f"engine: {e}")
                    views, alloc_notes = read_allocators(pid, table, allocators)
                    notes.extend(alloc_notes)
        except SourceError as e:  # not an engine, no debug info, gdb missing: the rest still stands
            notes.append(f"engine: {e}")
    return Snapshot(
        pid=pid,
        time=time.time(),
        status=status,
        stat=procfs.read_stat(pid),
        sched=procfs.read_sched(pid),
        process=probe.sample(),
        rollup=procfs.read_smaps_rollup(pid),
        mappings=procfs.read_smaps(pid),
        numa=procfs.read_numa_maps(pid),
        perf=perf,
        engine=stats,
        allocators=views,
        notes=tuple(notes),
    )
