"""Recordings: the format, and reading one back into Samples (`hftmem replay`, tests).

Format ``hftmem-recording`` version 1, one JSON object per line, each line written with one
``write(2)`` so a recorder killed with SIGKILL leaves at most its last line incomplete:

- line 1, ``{"type": "header", ...}``: the target (pid, comm, exe, cmdline, host, start time),
  ``target_start_ticks`` (stat's start time; files written before it have none: then the first
  sample's stat gives it), the recorder (hftmem version, interval, cadences), ``mapping_fields`` (column order of the
  mapping rows), ``part`` (1, 2... across rotations) and start-up ``notes``.
- then ``{"type": "sample", ...}``: ``seq``, ``time`` (epoch s), ``status``, ``stat``,
  ``process`` (cpu, rss, fds...), and when read at this sample: ``rollup``, ``mappings`` (full:
  rows) or ``mappings_delta`` (vs the previous full read: ``changed``/``new`` rows and
  ``vanished`` [start, path] pairs), ``kinds`` (per-kind totals), ``threads``; ``perf`` (counts
  summed over ``span_s``), ``engine``, ``allocators``, ``cost_ms`` (the recorder's own read
  times), ``notes``. The first sample of every file carries the full mapping table and the
  latest slow parts, so each rotated file stands alone.
- last, ``{"type": "end", "reason": ..., "samples": N}`` when the recorder stops on purpose
  (target exited, duration reached, size cap, rotated, stopped by a signal).

Writing is feeds/recording_writer.py; reading gives back the Samples the sampler produced. A file
is input like any other: each line is checked against the format (feeds/recording_check.py) and
a line that does not follow it is skipped with its line number and reason, never trusted.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass

from hftmem_tui.errors import SourceError
from hftmem_tui.feeds.feed import FeedEnded
from hftmem_tui.feeds.recording_check import (MAX_LINE_BYTES, TIME_MAX, BadRecord, array, build, integer, number,
                                              numbers, obj, optional, parse_line, text, texts, what)
from hftmem_tui.feeds.sample import Allocator, PerfInterval, Sample, TargetInfo
from hftmem_tui.model.allocators import ArenaView, PoolView, RingView
from hftmem_tui.model.decode import EngineStats
from hftmem_tui.sources import procfs
from hftmem_tui.sources.process import ProcessInfo, ThreadTimes

FORMAT = "hftmem-recording"
VERSION = 1
MAPPING_FIELDS = tuple(f.name for f in dataclasses.fields(procfs.Mapping))


class RecordingError(SourceError):
    """A recording cannot be written or read (bad path, not a recording, unknown version)."""


def recording_oserror(path: str, e: OSError, doing: str) -> RecordingError:
    """The one-line error for an OSError while ``doing`` ("read", "create"...) ``path``."""
    return RecordingError(f"cannot {doing} recording {path}: {e.strerror or e}")


# --------------------------------------------------------------------------- reading

READ_CHUNK = 1 << 20  # a longer line is measured in chunks first, and read whole only if allowed
MAX_SKIPS_KEPT = 100  # a file of garbage keeps this many reasons (and the count), not one per line


@dataclass(frozen=True, slots=True)
class Damage:
    """One line of a recording that was skipped, and why."""

    line: int  # 1-based line number of the skipped line
    offset: int  # byte offset of its start
    reason: str
    samples_before: int

    def message(self, path: str) -> str:
        return f"{path}: line {self.line} (byte {self.offset}) {self.reason}: skipped"


def _next_line(f) -> tuple[int, bytes | None, bool]:
    """(size, bytes or None when over MAX_LINE_BYTES, ends with a newline) of the next line;
    size 0 at the end of the file. An over-long line is measured chunk by chunk and dropped,
    never held whole."""
    first = f.readline(READ_CHUNK)
    if len(first) < READ_CHUNK or first.endswith(b"\n"):
        return len(first), first, first.endswith(b"\n")
    start = f.tell() - len(first)
    size, complete = len(first), False
    del first
    while part := f.readline(READ_CHUNK):
        size += len(part)
        if part.endswith(b"\n"):
            complete = True
            break
    if size > MAX_LINE_BYTES:
        return size, None, complete
    end = f.tell()
    f.seek(start)
    raw = f.read(size)  # long but within the limit: read it whole, once
    f.seek(end)
    return size, raw, complete


def _header_line(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.readline(1 << 20)
    except IsADirectoryError:
        raise RecordingError(f"cannot read recording {path}: it is a directory") from None
    except OSError as e:
        raise recording_oserror(path, e, "read") from None


class Recording:
    """One recording file. ``open`` checks the header; ``records()`` / ``samples()`` stream the
    rest, skipping each line that does not follow the format: ``skipped`` (the first
    MAX_SKIPS_KEPT), ``skipped_count``, ``damage`` (the first) and ``notice`` say which and why."""

    def __init__(self, path: str, header: dict, header_bytes: int) -> None:
        self.path = path
        self.header = header
        self._start = header_bytes
        self.skipped: list[Damage] = []
        self.skipped_count = 0
        self.samples_read = 0
        self.end: dict | None = None
        self.trailing_after_end = False

    @classmethod
    def open(cls, path: str) -> Recording:
        """Read and check the header. Raises RecordingError (missing, unreadable, empty, not a
        recording, an unsupported version, a header that does not follow the format)."""
        first = _header_line(path)
        if not first:
            raise RecordingError(f"{path}: empty file, not a hftmem recording")
        try:
            header = parse_line(first)
        except BadRecord as e:
            if first.startswith(b'{"type":"header"') and first.endswith(b"\n"):
                raise RecordingError(f"{path}: line 1, the header, {e}: not replayable") from None
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("type") != "header":
            if not first.endswith(b"\n") and first.startswith(b'{"type":"header"'):
                raise RecordingError(f"{path}: the header line is truncated: no sample was recorded")
            raise RecordingError(f"{path}: not a hftmem recording (no '{FORMAT}' header on line 1)")
        version = header.get("version")
        if version != VERSION:
            shown = version if isinstance(version, int) and abs(version) < 1 << 31 else what(version)
            raise RecordingError(f"{path}: recording format version {shown} is not "
                                 f"supported (this hftmem reads version {VERSION})")
        if not first.endswith(b"\n"):
            raise RecordingError(f"{path}: the header line is truncated: no sample was recorded")
        try:
            target_info(header)
            check_header(header)
        except BadRecord as e:
            raise RecordingError(f"{path}: line 1, the header, {e}: not replayable") from None
        return cls(path, header, len(first))

    @property
    def damage(self) -> Damage | None:
        """The first skipped line (after iterating), else None."""
        return self.skipped[0] if self.skipped else None

    @property
    def notice(self) -> str | None:
        """One line for the user when lines were skipped (after iterating), else None."""
        if not self.skipped:
            return None
        first = self.skipped[0]
        if self.skipped_count == 1:
            return f"{first.message(self.path)}; read {self.samples_read} samples"
        more = "; ".join(f"line {d.line} {d.reason}" for d in self.skipped[1:3])
        return (f"{self.path}: {self.skipped_count} lines skipped, read {self.samples_read} samples; "
                f"line {first.line} (byte {first.offset}) {first.reason}" + (f"; {more}" if more else "")
                + ("; ..." if self.skipped_count > 3 else ""))

    @property
    def complete(self) -> bool:
        """True when the recorder wrote its end line (it stopped on purpose)."""
        return self.end is not None

    def _skip(self, line: int, offset: int, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_SKIPS_KEPT:
            self.skipped.append(Damage(line, offset, reason, self.samples_read))

    def numbered_records(self) -> Iterator[tuple[int, int, dict]]:
        """(line number, byte offset, record) of every sample line that parses, in order; lines
        that do not parse or are not records of the format are skipped (see ``skipped``)."""
        self.skipped, self.skipped_count, self.samples_read, self.end = [], 0, 0, None
        try:
            f = open(self.path, "rb")
        except OSError as e:
            raise recording_oserror(self.path, e, "read") from None
        with f:
            f.seek(self._start)
            offset, lineno = self._start, 1
            while True:
                size, raw, complete = _next_line(f)
                if size == 0:
                    return
                lineno += 1
                try:
                    rec = _record(raw, size, complete)
                except BadRecord as e:
                    self._skip(lineno, offset, str(e))
                else:
                    if rec["type"] == "end":
                        self.end = rec
                        self.trailing_after_end = bool(f.read(1))
                        return
                    yield lineno, offset, rec
                offset += size

    def records(self) -> Iterator[dict]:
        """The sample records as stored (mappings as rows or deltas), in order."""
        for _line, _offset, rec in self.numbered_records():
            yield rec

    def target(self) -> TargetInfo:
        """The TargetInfo the header describes (start_ticks 0 if the header predates it)."""
        return target_info(self.header)

    def samples(self) -> Iterator[Sample]:
        """Every sample as the Sample the sampler produced: mappings rebuilt from the last full
        read plus deltas; rollup and mappings None unless read at that sample (a part repeated
        at the top of a rotated file is not a new read); per-thread times and the engine's gap
        histograms carried from their last (slow-cadence) read. A record whose fields do not
        follow the format, or whose time steps back, is skipped with its reason."""
        decoder = SampleDecoder(self.header)
        last: tuple[float, int] | None = None  # time and line of the last sample given
        for line, offset, rec in self.numbered_records():
            try:
                s = decoder.decode(rec)
                if last is not None and s.time < last[0]:
                    raise BadRecord(f"steps back in time {last[0] - s.time:.3f} s before line {last[1]}")
            except BadRecord as e:
                self._skip(line, offset, str(e))
                continue
            decoder.commit()
            last = (s.time, line)
            self.samples_read += 1
            yield s


def _record(raw: bytes | None, size: int, complete: bool) -> dict:
    """One line as a sample or end record; raises BadRecord."""
    if raw is None:
        raise BadRecord(f"is {size} bytes, over the {MAX_LINE_BYTES >> 20} MiB line limit")
    if not complete:
        raise BadRecord("is truncated (the recorder stopped mid-write)")
    rec = parse_line(raw)
    if not isinstance(rec, dict) or rec.get("type") not in ("sample", "end"):
        raise BadRecord("is not a sample record")
    if rec["type"] == "end":
        text(rec.get("reason", ""), "the end line's reason")
    return rec


def check_header(header: dict) -> None:
    """The header fields the reader uses beyond the target's identity. Raises BadRecord."""
    optional(number, header.get("interval_s"), "interval_s", 1e-3, 86400.0)
    if header.get("mapping_fields") is not None:
        array(header["mapping_fields"], "mapping_fields", 64)
        texts(header["mapping_fields"], "mapping_fields")
    texts(header.get("notes") or [], "notes")


def _sched_from(d: object) -> procfs.SchedInfo:
    d = obj(d, "sched") if d is not None else {}
    affinity = array(d.get("affinity", []), "sched.affinity", 1 << 16)
    return procfs.SchedInfo(text(d.get("policy", "?"), "sched.policy"),
                            integer(d.get("rt_priority", 0), "sched.rt_priority", -1000, 1000),
                            integer(d.get("nice", 0), "sched.nice", -1000, 1000),
                            frozenset(integer(c, "sched.affinity", 0, 1 << 20) for c in affinity))


def target_info(header: dict) -> TargetInfo:
    """The TargetInfo a recording's header describes, every field checked. Raises BadRecord."""
    h = header
    if "pid" not in h:
        raise BadRecord("has no pid")
    return TargetInfo(integer(h["pid"], "pid", 1, 1 << 31), text(h.get("comm", "?"), "comm"),
                      optional(text, h.get("exe"), "exe"), texts(h.get("cmdline") or [], "cmdline"),
                      optional(text, h.get("username"), "username"),
                      number(h.get("target_start_time") or 0.0, "target_start_time", 0.0, TIME_MAX),
                      text(h.get("host", "?"), "host"), _sched_from(h.get("sched")),
                      bool(h.get("engine")), text(h.get("hftmem_version", "?"), "hftmem_version"),
                      integer(h.get("target_start_ticks") or 0, "target_start_ticks", 0))


def _view(d: object, where: str) -> Allocator:
    d = obj(d, where)
    if "live" in d:
        return build(PoolView, d, where)
    if "used" in d:
        return build(ArenaView, d, where)
    return build(RingView, d, where)


def _or(d: dict, key: str, default):
    v = d.get(key)
    return default if v is None else v


def _perf(p: object) -> PerfInterval:
    p = obj(p, "perf")
    return PerfInterval(number(_or(p, "timestamp_s", 0.0), "perf.timestamp_s"),
                        number(_or(p, "span_s", 0.0), "perf.span_s"),
                        integer(_or(p, "intervals", 0), "perf.intervals"),
                        numbers(_or(p, "values", {}), "perf.values"),
                        frozenset(texts(_or(p, "unsupported", []), "perf.unsupported")),
                        frozenset(texts(_or(p, "not_counted", []), "perf.not_counted")))


def _threads(rows: object) -> tuple[ThreadTimes, ...]:
    out = []
    for i, row in enumerate(array(rows, "threads")):
        r = array(row, f"threads[{i}]", 3)
        if len(r) != 3:
            raise BadRecord(f"threads[{i}] has {len(r)} items, not 3")
        out.append(ThreadTimes(integer(r[0], f"threads[{i}]", 0), number(r[1], f"threads[{i}]"),
                               number(r[2], f"threads[{i}]")))
    return tuple(out)


def _need(rec: dict, key: str):
    if key not in rec:
        raise BadRecord(f"has no {key}")
    return rec[key]


class SampleDecoder:
    """Sample records of one file, in order -> Samples. Keeps what the encoder wrote only now
    and then: the full mapping table (for deltas), per-thread times, the gap histograms.
    ``decode`` checks a record whole before the caller ``commit``s what it carries forward, so
    a skipped record changes nothing."""

    def __init__(self, header: dict) -> None:
        self.header = header
        self.info = target_info(header)
        self.fields = tuple(header.get("mapping_fields") or MAPPING_FIELDS)
        self.current: dict[tuple[int, str], procfs.Mapping] | None = None
        self.threads: tuple[ThreadTimes, ...] = ()
        self.hists: dict | None = None
        self._next: tuple = (self.info, self.current, self.threads, self.hists)

    def _mapping(self, row: object, where: str) -> procfs.Mapping:
        r = array(row, where, len(self.fields))
        return build(procfs.Mapping, dict(zip(self.fields, r)), where)

    def _mappings(self, rec: dict) -> tuple[dict | None, tuple[procfs.Mapping, ...] | None]:
        """The table carried forward, and this sample's full table if smaps was read at it."""
        current = self.current
        if "mappings" in rec:
            current = {}
            for i, row in enumerate(array(rec["mappings"], "mappings")):
                m = self._mapping(row, f"mappings[{i}]")
                current[(m.start, m.path)] = m
            if "mappings_time" in rec:  # repeated at the top of a file, read earlier
                return current, None
        elif "mappings_delta" in rec and current is not None:
            d = obj(rec["mappings_delta"], "mappings_delta")
            current = dict(current)
            for i, pair in enumerate(array(d.get("vanished", []), "mappings_delta.vanished")):
                p = array(pair, f"mappings_delta.vanished[{i}]", 2)
                if len(p) != 2:
                    raise BadRecord(f"mappings_delta.vanished[{i}] is not a [start, path] pair")
                current.pop((integer(p[0], "mappings_delta.vanished"), text(p[1], "mappings_delta.vanished")), None)
            for key in ("changed", "new"):
                for i, row in enumerate(array(d.get(key, []), f"mappings_delta.{key}")):
                    m = self._mapping(row, f"mappings_delta.{key}[{i}]")
                    current[(m.start, m.path)] = m
        else:
            return current, None
        return current, tuple(sorted(current.values(), key=lambda m: m.start))

    def _process(self, rec: dict, threads: tuple[ThreadTimes, ...]) -> ProcessInfo:
        """The identity is the header's; the counters are this sample's."""
        i, p = self.info, obj(_or(rec, "process", {}), "process")
        return ProcessInfo(
            pid=i.pid, name=i.comm, cmdline=i.cmdline, exe=i.exe, username=i.username, create_time=i.create_time,
            cpu_percent=number(_or(p, "cpu_percent", 0.0), "process.cpu_percent"),
            rss=integer(_or(p, "rss", 0), "process.rss"), vms=integer(_or(p, "vms", 0), "process.vms"),
            uss=None, pss=None, swap=None, num_threads=integer(_or(p, "num_threads", 0), "process.num_threads"),
            threads=threads, open_files=optional(integer, p.get("open_files"), "process.open_files"),
            num_fds=optional(integer, p.get("num_fds"), "process.num_fds"))

    def _engine(self, rec: dict) -> tuple[EngineStats | None, dict | None]:
        hists = self.hists
        e = rec.get("engine")
        if e is None:
            return None, hists
        e = obj(e, "engine")
        if "max_gap_hist" in e or "p999_gap_hist" in e:
            hists = {k: _need(e, k) for k in ("max_gap_hist", "p999_gap_hist")}
        if hists is None:
            return None, hists
        return build(EngineStats, {**e, **hists}, "engine"), hists

    def decode(self, rec: dict) -> Sample:
        """One sample record (as Recording.records() yields it) as a Sample; ``commit()`` then
        carries its mapping table, thread times and histograms forward. Raises BadRecord."""
        t = number(_need(rec, "time"), "time", 0.0, TIME_MAX)
        status = build(procfs.Status, _need(rec, "status"), "status")
        stat = build(procfs.Stat, _need(rec, "stat"), "stat")
        info = self.info
        if info.start_ticks == 0:  # a header without target_start_ticks: the target's stat says it
            info = dataclasses.replace(info, start_ticks=max(0, stat.starttime_ticks))
        threads = _threads(rec["threads"] or []) if "threads" in rec else self.threads
        current, mappings = self._mappings(rec)
        rollup = None
        if rec.get("rollup") is not None and "rollup_time" not in rec:
            rollup = build(procfs.Rollup, rec["rollup"], "rollup")
        engine, hists = self._engine(rec)
        perf = _perf(rec["perf"]) if rec.get("perf") is not None else None
        allocators = tuple(_view(a, f"allocators[{i}]")
                           for i, a in enumerate(array(_or(rec, "allocators", []), "allocators")))
        sample = Sample(info, integer(_or(rec, "seq", 0), "seq", 0), t, status, stat,
                        self._process(rec, threads), rollup, mappings, perf, engine, allocators,
                        numbers(_or(rec, "cost_ms", {}), "cost_ms"), texts(_or(rec, "notes", []), "notes"))
        self._next = (info, current, threads, hists)
        return sample

    def commit(self) -> None:
        """Keep what the last decoded record carries forward (it was not skipped)."""
        self.info, self.current, self.threads, self.hists = self._next


def recording_parts(path: str) -> list[str]:
    """A rotated recording's files, oldest first: path.K ... path.1, path (those that exist)."""
    parts = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        parts.append(f"{path}.{i}")
        i += 1
    parts.reverse()
    if os.path.exists(path):
        parts.append(path)
    return parts



class RecordedFeed:
    """A SampleFeed over a recording (feeds.feed): ``live = False``; each ``sample()`` is the
    next recorded sample; past the last, FeedEnded. ``cursor`` is the index of the next one.

    Raises RecordingError from the constructor for a file that is not a readable recording.
    """

    live = False

    def __init__(self, path: str) -> None:
        self.recording = Recording.open(path)
        self.pid = int(self.recording.header.get("pid") or 0)
        self.samples: list[Sample] = list(self.recording.samples())
        self.cursor = 0
        self.interval_s = float(self.recording.header.get("interval_s") or 1.0)

    def start(self) -> TargetInfo:
        return self.samples[0].target if self.samples else self.recording.target()

    def sample(self) -> Sample:
        if self.cursor >= len(self.samples):
            raise FeedEnded(f"end of recording {self.recording.path}")
        s = self.samples[self.cursor]
        self.cursor += 1
        return s

    def close(self) -> None:
        pass
