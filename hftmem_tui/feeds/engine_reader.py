"""The engine reader: the demo engine's stats block and the allocator globals, read zero-stop.

Addresses and layouts are resolved once (gdb on the executable file, then closed); every read
after that is a few process_vm_readv calls of a few hundred bytes. The live sampler and
`hftmem snapshot` (one sample of the sampler) both read through ``EngineReader``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hftmem_tui.errors import NoSuchProcess, NotAnEngine, SourceError, SymbolNotFound, ZombieProcess
from hftmem_tui.feeds.sample import Allocator
from hftmem_tui.model.allocconfig import AllocatorSpec, specs_for
from hftmem_tui.model.allocators import FieldSpec, counter_span, decode_view
from hftmem_tui.model.decode import EngineStats, decode_engine_stats
from hftmem_tui.sources.memory import read_memory
from hftmem_tui.sources.symbols import SymbolTable

ENGINE_STATS_SYMBOL = "hftmem_engine_stats"

# The demo engine's allocator globals and what they are.
DEMO_ALLOCATORS = (("hftmem_order_pool", "pool"), ("hftmem_scratch_arena", "arena"),
                   ("hftmem_md_ring", "ring"), ("hftmem_md_ring_packed", "ring"))
DEMO_SPECS = specs_for(DEMO_ALLOCATORS)


@dataclass(frozen=True, slots=True)
class AllocatorSlot:
    """Where one allocator's counters live in the target, and how to decode them."""

    symbol: str
    kind: str
    layout: object  # sources.symbols' struct layout of the global
    address: int  # runtime address of the first counter byte
    start: int  # offset of that byte in the struct
    length: int
    fields: dict[str, FieldSpec] | None


class EngineReader:
    """The stats block and allocator views of one process.

    ``specs``: the allocator globals to read (model.allocconfig); None = the demo engine's own,
    and then the stats block must exist (NotAnEngine otherwise). With a description, a process
    that is not the demo engine still gets its allocators; a global or member that cannot be
    resolved becomes a note (``notes``). ``need_stats`` overrides whether a missing stats block
    raises. ``table``: an open SymbolTable to resolve with (else one is opened and closed).

    Raises NotAnEngine, NoDebugInfo, NoSuchProcess, ZombieProcess, UnmappedAddress, SourceError.
    """

    def __init__(self, pid: int, specs: tuple[AllocatorSpec, ...] | None = None, *,
                 table: SymbolTable | None = None, need_stats: bool | None = None) -> None:
        self.pid = pid
        self.notes: list[str] = []
        self.stats_layout = None
        self.stats_addr = 0
        self.allocators: list[AllocatorSlot] = []
        own = table is None
        table = table or SymbolTable.for_pid(pid)
        try:
            self._resolve_stats(table, specs is None if need_stats is None else need_stats)
            for spec in (DEMO_SPECS if specs is None else specs):
                self._resolve_allocator(table, spec, strict=specs is None)
        finally:
            if own:
                table.close()
        self.read()  # fail now (bad magic, unknown version) rather than at the first sample

    def _resolve_stats(self, table: SymbolTable, need: bool) -> None:
        try:
            sym = table.resolve(ENGINE_STATS_SYMBOL)
        except SymbolNotFound:
            why = f"process {self.pid} is not a hftmem demo engine (no {ENGINE_STATS_SYMBOL})"
            if need:
                raise NotAnEngine(why) from None
            self.notes.append(f"engine: {why}")
            return
        self.stats_layout = table.layout(ENGINE_STATS_SYMBOL)
        self.stats_addr = table.runtime_address(sym, self.pid)

    def _resolve_allocator(self, table: SymbolTable, spec: AllocatorSpec, *, strict: bool) -> None:
        """One allocator global; a described one that cannot be resolved costs only its gauge."""
        fields = spec.field_map
        try:
            layout = table.layout(spec.symbol)
            start, length = counter_span(layout, spec.kind, fields)
            addr = table.runtime_address(table.resolve(spec.symbol), self.pid) + start
        except (NoSuchProcess, ZombieProcess):
            raise
        except SourceError as e:
            if strict:
                raise
            where = f" (line {spec.line})" if spec.line else ""
            self.notes.append(f"allocator {spec.symbol}{where}: {e}")
            return
        self.allocators.append(AllocatorSlot(spec.symbol, spec.kind, layout, addr, start, length, fields))

    @property
    def has_stats(self) -> bool:
        return self.stats_layout is not None

    def read_stats(self) -> EngineStats | None:
        """The stats block now, decoded by field name; None when the process has none."""
        if self.stats_layout is None:
            return None
        data = read_memory(self.pid, self.stats_addr, self.stats_layout.size)
        return decode_engine_stats(self.stats_layout, data)

    def read_allocators(self) -> tuple[Allocator, ...]:
        """Only the counters of each allocator (a few hundred bytes), decoded by name."""
        return tuple(decode_view(a.kind, a.symbol, a.layout,
                                 read_memory(self.pid, a.address, a.length) if a.length else b"",
                                 a.start, a.fields)
                     for a in self.allocators)

    def read(self) -> tuple[EngineStats | None, tuple[Allocator, ...]]:
        """Stats block and allocator views. Raises NoSuchProcess, UnmappedAddress, SourceError."""
        return self.read_stats(), self.read_allocators()


def read_engine_stats(pid: int, table: SymbolTable | None = None) -> EngineStats:
    """Decode the demo engine's stats block from the live process, by field name.

    Raises NotAnEngine when the executable has no such block, NoDebugInfo, NoSuchProcess,
    UnmappedAddress.
    """
    stats = EngineReader(pid, (), table=table, need_stats=True).read_stats()
    assert stats is not None  # need_stats: a missing block raised NotAnEngine
    return stats
