"""The one sampling pipeline, zero-stop: what `attach`, `record`, `export` and `snapshot` (one
sample at full cadence, feeds/snapshot.py) read. It produces feeds.sample.Sample.

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
from dataclasses import dataclass

from hftmem_tui.errors import NoSuchProcess, NotAnEngine, SourceError, ZombieProcess
from hftmem_tui.feeds.engine_reader import EngineReader
from hftmem_tui.feeds.sample import PerfInterval, Sample, TargetInfo
from hftmem_tui.model.allocconfig import AllocatorSpec
from hftmem_tui.model.cadence import DutyCycle
from hftmem_tui.sources import procfs
from hftmem_tui.sources.perf.stat import PerfStream, describe_exit
from hftmem_tui.sources.process import ProcessProbe

TargetGone = (NoSuchProcess, ZombieProcess)


def ticks_to_epoch(ticks: int) -> float | None:
    """The wall-clock time of ``ticks`` after boot (stat's start time), None if unknown."""
    for line in (procfs.read_system("stat") or "").splitlines():
        if line.startswith("btime "):
            return int(line.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    return None


class ProcessReplaced(NoSuchProcess):
    """The pid now names another process: the one followed exited and its pid was reused.
    A NoSuchProcess, so every ``except TargetGone`` ends on it; the message says replaced."""

    def __init__(self, pid: int, start_ticks: int) -> None:
        self.pid = pid
        self.start_ticks = start_ticks
        at = ticks_to_epoch(start_ticks)
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at is not None else f"tick {start_ticks}"
        SourceError.__init__(self, f"process {pid} was replaced by another process (started at {when})")


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """(pid, start time): one process for good. A pid is reused; its start time is not."""

    pid: int
    start_ticks: int

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity:
        """The process that has ``pid`` now. Raises NoSuchProcess, AccessDenied."""
        return cls(pid, procfs.read_stat(pid).starttime_ticks)

    def check(self) -> procfs.Stat:
        """The pid's stat if it is still this process. Raises ProcessReplaced (the pid was
        reused), NoSuchProcess (gone), AccessDenied."""
        stat = procfs.read_stat(self.pid)
        if self.start_ticks and stat.starttime_ticks != self.start_ticks:
            raise ProcessReplaced(self.pid, stat.starttime_ticks)
        return stat


def exe_identity(pid: int) -> tuple[str, int, int] | None:
    """(path, device, inode) of the running executable, None if unreadable: the inode changes
    on exec, not when the file is replaced on disk. Raises NoSuchProcess, ZombieProcess."""
    try:
        return procfs.exe_identity(pid)
    except TargetGone:
        raise
    except SourceError:  # exe refused (another user's process): no exec detection, the rest stands
        return None


class PerfDrain:
    """One ``perf stat -I`` for the whole session; a thread parks its intervals until drained."""

    def __init__(self, pid: int, interval_ms: int) -> None:
        self.stream = PerfStream(pid, interval_ms=interval_ms, die_with_parent=True)
        self.stream.start()  # from the caller's (long-lived) thread: perf dies with it
        self._lock = threading.Lock()
        self._pending: list = []
        self._arrived = threading.Event()  # an interval is pending, or the stream ended
        self.error: str | None = None
        self.ended = False
        self._thread = threading.Thread(target=self._run, name="hftmem-perf", daemon=True)
        self._thread.start()

    @property
    def interval_ms(self) -> int:
        return self.stream.interval_ms

    def _run(self) -> None:
        try:
            for s in self.stream.samples():
                with self._lock:
                    self._pending.append(s)
                    self._arrived.set()
        except SourceError as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - a reader thread must not die silently
            self.error = f"perf reader failed: {e}"
        finally:
            self.ended = True
            self._arrived.set()

    def wait(self, timeout: float) -> bool:
        """Wait until an interval is pending or perf ended; False on timeout."""
        return self._arrived.wait(timeout)

    def drain(self) -> PerfInterval | None:
        """The intervals that ended since the last drain, summed; None if there were none."""
        with self._lock:
            got, self._pending = self._pending, []
            if not self.ended:
                self._arrived.clear()
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
    """A SampleFeed (feeds.feed) for a live pid: ``live = True``.

    Sample one pid at a steady interval without disturbing it. Use as a context manager.
    ``numa``: read numa_maps with every full smaps read (a snapshot does; the TUI does not).

    ``start()`` raises NoSuchProcess, ZombieProcess, KernelThread, AccessDenied (a bad target);
    perf or engine problems only become notes. ``sample()`` raises NoSuchProcess/ZombieProcess
    once the target is gone (catch ``TargetGone``), ProcessReplaced (a NoSuchProcess) once its
    pid names another process: the target is (pid, start time), read at ``start()``.
    """

    def __init__(self, pid: int, *, interval_s: float = 1.0, smaps_every: int = 30,
                 rollup_every: int = 1, budget: float = 0.01, perf: bool = True, engine: bool = True,
                 allocators: tuple[AllocatorSpec, ...] | None = None, numa: bool = False) -> None:
        if interval_s <= 0:
            raise ValueError("interval must be positive")
        self.pid = pid
        self.interval_s = interval_s
        self.rollup_cycle = DutyCycle(rollup_every, budget)
        self.smaps_cycle = DutyCycle(smaps_every, budget)
        self.want_perf = perf
        self.want_engine = engine
        self.want_numa = numa
        self.allocator_specs = allocators  # None: the demo engine's own pools/arena/rings
        self.info: TargetInfo | None = None
        self.notes: list[str] = []  # start-up notes (perf refused, not an engine...)
        self.perf: PerfDrain | None = None  # None: perf off, refused, or closed
        self.engine: EngineReader | None = None  # None: off, or not an engine
        self._probe: ProcessProbe | None = None
        self._seq = 0
        self._perf_error_noted = False
        self.live = True
        self._exe: tuple[str, int, int] | None = None
        self.identity: ProcessIdentity | None = None  # (pid, start time) of the process followed
        self._told: set[str] = set()
        self.force_full = False  # next sample reads full smaps regardless of its cycle (new file)

    @property
    def perf_interval_ms(self) -> int:
        return max(100, int(self.interval_s * 1000))

    def start(self) -> TargetInfo:
        """Who the target is; starts perf and resolves the engine. Raises as the class says."""
        procfs.check_target(self.pid)
        self._probe = ProcessProbe(self.pid)
        first = self._probe.sample()
        status = procfs.read_status(self.pid)
        stat = procfs.read_stat(self.pid)
        self.identity = ProcessIdentity(self.pid, stat.starttime_ticks)
        if self.want_engine:
            try:
                self.engine = EngineReader(self.pid, self.allocator_specs)
                self.notes.extend(self.engine.notes)
            except TargetGone:
                raise
            except SourceError as e:  # not an engine, no debug info, gdb missing: the rest stands
                self.notes.append(f"engine: {e}")
        if self.want_perf:
            try:
                self.perf = PerfDrain(self.pid, self.perf_interval_ms)
            except SourceError as e:
                self.notes.append(f"perf: {e}")
        self._exe = exe_identity(self.pid)
        self.info = TargetInfo(self.pid, status.name, first.exe, first.cmdline, first.username,
                               first.create_time, socket.gethostname(), procfs.read_sched(self.pid),
                               self.engine is not None, start_ticks=stat.starttime_ticks)
        return self.info

    def __enter__(self) -> LiveSampler:
        if self.info is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.perf is not None:
            self.perf.close()
            self.perf = None

    def _exec_seen(self, exe: tuple[str, int, int]) -> str:
        """The target exec'd another program (same pid): what we knew of the old image is void."""
        note = f"process {self.pid} exec'd {exe[0]} (was {self._exe[0] if self._exe else 'unknown'})"
        self._exe = exe
        had_engine, self.engine = self.engine is not None, None  # its addresses were the old image's
        self.force_full = True  # every mapping changed
        if self.want_engine:
            for _attempt in range(3):
                try:
                    self.engine = EngineReader(self.pid, self.allocator_specs)
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

    def fresh_notes(self, sample: Sample) -> list[str]:
        """The notes of ``sample`` not seen in earlier samples: what a headless command tells once."""
        new = [n for n in sample.notes if n not in self._told]
        self._told.update(new)
        return new

    def sample(self, *, full: bool = False) -> Sample:
        """Read one sample now (the caller paces the calls). ``full``: every part, whatever the
        cadence says (rollup, every mapping, numa). Raises NoSuchProcess, ZombieProcess,
        ProcessReplaced: the start time is checked before and after the reads, so no sample
        holds a byte of a process that took over the pid."""
        if self.info is None:
            self.start()
        assert self._probe is not None and self.info is not None and self.identity is not None
        cost: dict[str, float] = {}
        notes: list[str] = []
        clock = time.monotonic
        t0 = clock()
        status = procfs.read_status(self.pid)
        if status.is_zombie:
            raise ZombieProcess(self.pid)
        stat = self.identity.check()
        process = self._probe.sample()
        exe = exe_identity(self.pid)
        if exe is not None and exe != self._exe:
            notes.append(self._exec_seen(exe))
        cost["status"] = (clock() - t0) * 1000
        perf = self._drain_perf(notes)  # first: a snapshot's counts then cover its one interval
        rollup, mappings, numa = self._slow_parts(cost, full)
        engine, views = None, ()
        if self.engine is not None:
            t3 = clock()
            try:
                engine, views = self.engine.read()
            except TargetGone:
                raise
            except SourceError as e:
                notes.append(f"engine: {e}")
            cost["engine"] = (clock() - t3) * 1000
        self.identity.check()  # still the same process after every read: none of it is a newcomer's
        self._seq += 1
        return Sample(self.info, self._seq, time.time(), status, stat, process, rollup, mappings, perf,
                      engine, views, {k: round(v, 3) for k, v in cost.items()}, tuple(notes), numa)

    def _slow_parts(self, cost: dict[str, float], full: bool):
        """smaps_rollup and full smaps (and numa_maps) when their DutyCycle, or ``full``, says so."""
        clock = time.monotonic
        rollup = mappings = numa = None
        t1 = clock()
        if full or self.rollup_cycle.due(t1):
            rollup = procfs.read_smaps_rollup(self.pid)
            t2 = clock()
            self.rollup_cycle.ran(t1, t2)
            cost["rollup"] = (t2 - t1) * 1000
        t2 = clock()
        if full or self.force_full or self.smaps_cycle.due(t2):
            mappings = procfs.read_smaps(self.pid)
            if self.want_numa:
                numa = procfs.read_numa_maps(self.pid)
            t3 = clock()
            self.smaps_cycle.ran(t2, t3)
            cost["smaps"] = (t3 - t2) * 1000
            self.force_full = False
        return rollup, mappings, numa

    def _drain_perf(self, notes: list[str]) -> PerfInterval | None:
        """perf's intervals since the last sample; a perf that died is noted once."""
        if self.perf is None:
            return None
        perf = self.perf.drain()
        if self.perf.ended and not self.perf.error:
            procfs.check_target(self.pid)  # perf ends with its target: then this raises TargetGone
            self.perf.error = f"perf stat {describe_exit(self.perf.stream.returncode)}: no perf counters from here on"
        if self.perf.error and not self._perf_error_noted:
            notes.append(f"perf: {self.perf.error}")
            self._perf_error_noted = True
        return perf
