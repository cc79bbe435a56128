"""A long-running, zero-stop sampler of one process: what `hftmem record` and `hftmem export` read.

Cost rules (DESIGN.md): /proc/PID/status and stat are counters, read every sample; smaps_rollup
and full smaps walk the target's page tables, so each runs under a DutyCycle (by count and by
its own measured cost); perf counts through ONE long-running ``perf stat -I`` whose intervals
are drained at each sample; the engine's symbols come from gdb on the executable once, at
start, then every sample is a few process_vm_readv calls of a few hundred bytes.
Nothing here stops, traces or writes to the target.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field

from hftmem_tui import __version__
from hftmem_tui.model.allocconfig import AllocatorSpec
from hftmem_tui.model.allocators import ArenaView, PoolView, RingView, counter_span, decode_view
from hftmem_tui.model.cadence import DutyCycle
from hftmem_tui.model.decode import EngineStats, decode_engine_stats
from hftmem_tui.sources import procfs
from hftmem_tui.errors import NoSuchProcess, NotAnEngine, SourceError, SymbolNotFound, ZombieProcess
from hftmem_tui.sources.memory import read_memory
from hftmem_tui.sources.perf.stat import PerfStream, describe_exit
from hftmem_tui.sources.process import ProcessInfo, ProcessProbe
from hftmem_tui.feeds.snapshot import DEMO_SPECS, ENGINE_STATS_SYMBOL
from hftmem_tui.sources.symbols import SymbolTable

TargetGone = (NoSuchProcess, ZombieProcess)


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """Who is being sampled: the facts that do not change while it runs."""

    pid: int
    comm: str
    exe: str | None
    cmdline: tuple[str, ...]
    username: str | None
    create_time: float
    host: str
    sched: procfs.SchedInfo
    engine: bool  # the demo engine's stats block was found
    hftmem_version: str = __version__


@dataclass(frozen=True, slots=True)
class PerfInterval:
    """perf counts summed over the ``perf stat -I`` intervals that ended since the last sample."""

    timestamp_s: float  # perf's elapsed time at the last interval
    span_s: float  # how much counting time the values cover
    intervals: int
    values: dict[str, float]
    unsupported: frozenset[str]
    not_counted: frozenset[str]


@dataclass(frozen=True, slots=True)
class LiveSample:
    """One sample. rollup/mappings are None when their DutyCycle did not run them this time."""

    seq: int
    time: float
    status: procfs.Status
    stat: procfs.Stat
    process: ProcessInfo
    rollup: procfs.Rollup | None
    mappings: tuple[procfs.Mapping, ...] | None
    perf: PerfInterval | None
    engine: EngineStats | None
    allocators: tuple[PoolView | ArenaView | RingView, ...]
    cost_ms: dict[str, float]
    notes: tuple[str, ...] = field(default=())


class _EngineReader:
    """Addresses and layouts resolved once (gdb on the ELF, then closed); reads are process_vm_readv.

    ``specs``: the allocator globals to read (model.allocconfig); None = the demo engine's own,
    and then the stats block must exist. With a description, a process that is not the demo
    engine still gets its allocators; a global or member that cannot be resolved becomes a note.
    """

    def __init__(self, pid: int, specs: tuple[AllocatorSpec, ...] | None = None) -> None:
        self.pid = pid
        self.notes: list[str] = []
        self.stats_layout = None
        self.stats_addr = 0
        with SymbolTable.for_pid(pid) as table:
            try:
                sym = table.resolve(ENGINE_STATS_SYMBOL)
            except SymbolNotFound:
                if specs is None:
                    raise NotAnEngine(f"process {pid} is not a hftmem demo engine (no {ENGINE_STATS_SYMBOL})") from None
                self.notes.append(f"engine: process {pid} is not a hftmem demo engine (no {ENGINE_STATS_SYMBOL})")
            else:
                self.stats_layout = table.layout(ENGINE_STATS_SYMBOL)
                self.stats_addr = table.runtime_address(sym, pid)
            self.allocators = []
            for spec in (DEMO_SPECS if specs is None else specs):
                fields = spec.field_map
                try:
                    layout = table.layout(spec.symbol)
                    start, length = counter_span(layout, spec.kind, fields)
                    addr = table.runtime_address(table.resolve(spec.symbol), pid) + start
                except TargetGone:
                    raise
                except SourceError as e:
                    if specs is None:
                        raise
                    where = f" (line {spec.line})" if spec.line else ""
                    self.notes.append(f"allocator {spec.symbol}{where}: {e}")
                    continue
                self.allocators.append((spec.symbol, spec.kind, layout, addr, start, length, fields))
        self.read()  # fail now (bad magic, unknown version) rather than at the first sample

    def read(self) -> tuple[EngineStats | None, tuple]:
        stats = None
        if self.stats_layout is not None:
            data = read_memory(self.pid, self.stats_addr, self.stats_layout.size)
            stats = decode_engine_stats(self.stats_layout, data)
        views = tuple(decode_view(kind, name, layout, read_memory(self.pid, addr, length) if length else b"",
                                  start, fields)
                      for name, kind, layout, addr, start, length, fields in self.allocators)
        return stats, views


def _exe_identity(pid: int) -> tuple[str, int, int] | None:
    """(path, device, inode) of the running executable: the inode changes on exec, not when the
    file is replaced on disk (the link then reads "PATH (deleted)"). None if unreadable."""
    link = f"/proc/{pid}/exe"
    try:
        st = os.stat(link)
        return os.readlink(link).removesuffix(" (deleted)"), st.st_dev, st.st_ino
    except OSError:
        return None


class _PerfDrain:
    """One ``perf stat -I`` for the whole session; a thread parks its intervals until drained."""

    def __init__(self, pid: int, interval_ms: int) -> None:
        self.stream = PerfStream(pid, interval_ms=interval_ms, die_with_parent=True)
        self.stream.start()  # from the caller's (long-lived) thread: perf dies with it
        self._lock = threading.Lock()
        self._pending: list = []
        self.error: str | None = None
        self.ended = False
        self._thread = threading.Thread(target=self._run, name="hftmem-perf", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for s in self.stream.samples():
                with self._lock:
                    self._pending.append(s)
        except SourceError as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - a reader thread must not die silently
            self.error = f"perf reader failed: {e}"
        finally:
            self.ended = True

    def drain(self) -> PerfInterval | None:
        with self._lock:
            got, self._pending = self._pending, []
        if not got:
            return None
        values: dict[str, float] = {}
        for s in got:
            for k, v in s.values.items():
                if v is not None:
                    values[k] = values.get(k, 0.0) + v
        last = got[-1]
        return PerfInterval(last.timestamp_s, len(got) * self.stream.interval_ms / 1000, len(got), values,
                            last.unsupported, frozenset().union(*(s.not_counted for s in got)))

    def close(self) -> None:
        self.stream.close()
        self._thread.join(timeout=3)


class LiveSampler:
    """A SampleFeed (model.feed) for a live pid: ``live = True``.

    Sample one pid at a steady interval without disturbing it. Use as a context manager.

    ``start()`` raises NoSuchProcess, ZombieProcess, KernelThread, AccessDenied (a bad target);
    perf or engine problems only become notes. ``sample()`` raises NoSuchProcess/ZombieProcess
    once the target is gone (catch ``TargetGone``).
    """

    def __init__(self, pid: int, *, interval_s: float = 1.0, smaps_every: int = 30,
                 rollup_every: int = 1, budget: float = 0.01, perf: bool = True, engine: bool = True,
                 allocators: tuple[AllocatorSpec, ...] | None = None) -> None:
        if interval_s <= 0:
            raise ValueError("interval must be positive")
        self.pid = pid
        self.interval_s = interval_s
        self.rollup_cycle = DutyCycle(rollup_every, budget)
        self.smaps_cycle = DutyCycle(smaps_every, budget)
        self.want_perf = perf
        self.want_engine = engine
        self.allocator_specs = allocators  # None: the demo engine's own pools/arena/rings
        self.info: TargetInfo | None = None
        self.notes: list[str] = []  # start-up notes (perf refused, not an engine...)
        self._perf: _PerfDrain | None = None
        self._engine: _EngineReader | None = None
        self._probe: ProcessProbe | None = None
        self._seq = 0
        self._perf_error_noted = False
        self.live = True
        self._exe: tuple[str, int, int] | None = None
        self._told: set[str] = set()
        self.force_full = False  # next sample reads full smaps regardless of its cycle (new file)

    @property
    def perf_interval_ms(self) -> int:
        return max(100, int(self.interval_s * 1000))

    def start(self) -> TargetInfo:
        procfs.check_target(self.pid)
        self._probe = ProcessProbe(self.pid)
        first = self._probe.sample()
        status = procfs.read_status(self.pid)
        if self.want_engine:
            try:
                self._engine = _EngineReader(self.pid, self.allocator_specs)
                self.notes.extend(self._engine.notes)
            except TargetGone:
                raise
            except SourceError as e:  # not an engine, no debug info, gdb missing: the rest stands
                self.notes.append(f"engine: {e}")
        if self.want_perf:
            try:
                self._perf = _PerfDrain(self.pid, self.perf_interval_ms)
            except SourceError as e:
                self.notes.append(f"perf: {e}")
        self._exe = _exe_identity(self.pid)
        self.info = TargetInfo(self.pid, status.name, first.exe, first.cmdline, first.username,
                               first.create_time, socket.gethostname(), procfs.read_sched(self.pid),
                               self._engine is not None)
        return self.info

    def __enter__(self) -> LiveSampler:
        if self.info is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._perf is not None:
            self._perf.close()
            self._perf = None

    def _exec_seen(self, exe: tuple[str, int, int]) -> str:
        """The target exec'd another program (same pid): what we knew of the old image is void."""
        note = f"process {self.pid} exec'd {exe[0]} (was {self._exe[0] if self._exe else 'unknown'})"
        self._exe = exe
        had_engine, self._engine = self._engine is not None, None  # its addresses were the old image's
        self.force_full = True  # every mapping changed
        if self.want_engine:
            for _attempt in range(3):
                try:
                    self._engine = _EngineReader(self.pid, self.allocator_specs)
                    return note + ": reading its engine stats"
                except TargetGone:
                    raise
                except NotAnEngine as e:  # maybe an engine that has not written its magic yet
                    error = e
                    time.sleep(0.05)
                except SourceError as e:
                    error = e
                    break
            if had_engine:
                return note + f": engine stats stop here ({error})"
        return note

    def fresh_notes(self, sample: LiveSample) -> list[str]:
        """The notes of ``sample`` not seen in earlier samples: what a headless command tells once."""
        new = [n for n in sample.notes if n not in self._told]
        self._told.update(new)
        return new

    def sample(self) -> LiveSample:
        """Read one sample now (the caller paces the calls)."""
        if self.info is None:
            self.start()
        assert self._probe is not None
        pid = self.pid
        cost: dict[str, float] = {}
        notes: list[str] = []
        clock = time.monotonic

        t0 = clock()
        status = procfs.read_status(pid)
        if status.is_zombie:
            raise ZombieProcess(pid)
        stat = procfs.read_stat(pid)
        process = self._probe.sample()
        exe = _exe_identity(pid)
        if exe is not None and exe != self._exe:
            notes.append(self._exec_seen(exe))
        t1 = clock()
        cost["status"] = (t1 - t0) * 1000

        rollup = None
        if self.rollup_cycle.due(t1):
            rollup = procfs.read_smaps_rollup(pid)
            t2 = clock()
            self.rollup_cycle.ran(t1, t2)
            cost["rollup"] = (t2 - t1) * 1000
        mappings = None
        t2 = clock()
        if self.force_full or self.smaps_cycle.due(t2):
            mappings = procfs.read_smaps(pid)
            t3 = clock()
            self.smaps_cycle.ran(t2, t3)
            cost["smaps"] = (t3 - t2) * 1000
            self.force_full = False

        engine, views = None, ()
        if self._engine is not None:
            t3 = clock()
            try:
                engine, views = self._engine.read()
            except TargetGone:
                raise
            except SourceError as e:
                notes.append(f"engine: {e}")
            cost["engine"] = (clock() - t3) * 1000

        perf = None
        if self._perf is not None:
            perf = self._perf.drain()
            if self._perf.ended and not self._perf.error:
                procfs.check_target(pid)  # perf ends with its target: then this raises TargetGone
                self._perf.error = f"perf stat {describe_exit(self._perf.stream.returncode)}: no perf counters from here on"
            if self._perf.error and not self._perf_error_noted:
                notes.append(f"perf: {self._perf.error}")
                self._perf_error_noted = True
        self._seq += 1
        return LiveSample(self._seq, time.time(), status, stat, process, rollup, mappings, perf,
                          engine, views, {k: round(v, 3) for k, v in cost.items()}, tuple(notes))
