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

Writing is feeds/recording_writer.py; reading gives back the Samples the sampler produced.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

from hftmem_tui.errors import SourceError
from hftmem_tui.feeds.feed import FeedEnded
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


@dataclass(frozen=True, slots=True)
class Damage:
    """Where a recording stops being readable."""

    line: int  # 1-based line number of the damaged line
    offset: int  # byte offset of its start
    reason: str
    samples_before: int

    def message(self, path: str) -> str:
        return (f"{path}: line {self.line} (byte {self.offset}) {self.reason}; "
                f"read {self.samples_before} samples up to there")


class Recording:
    """One recording file. ``open`` checks the header; ``records()`` / ``samples()`` stream the
    rest and stop at the first truncated or corrupt line, setting ``damage`` (and ``notice``)."""

    def __init__(self, path: str, header: dict, header_bytes: int) -> None:
        self.path = path
        self.header = header
        self._start = header_bytes
        self.damage: Damage | None = None
        self.end: dict | None = None
        self.trailing_after_end = False

    @classmethod
    def open(cls, path: str) -> Recording:
        """Read and check the header. Raises RecordingError (missing, unreadable, empty, not a
        recording, an unsupported version)."""
        try:
            with open(path, "rb") as f:
                first = f.readline(1 << 20)
        except IsADirectoryError:
            raise RecordingError(f"cannot read recording {path}: it is a directory") from None
        except OSError as e:
            raise recording_oserror(path, e, "read") from None
        if not first:
            raise RecordingError(f"{path}: empty file, not a hftmem recording")
        try:
            header = json.loads(first)
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("type") != "header":
            if not first.endswith(b"\n") and first.startswith(b'{"type":"header"'):
                raise RecordingError(f"{path}: the header line is truncated: no sample was recorded")
            raise RecordingError(f"{path}: not a hftmem recording (no '{FORMAT}' header on line 1)")
        if header.get("version") != VERSION:
            raise RecordingError(f"{path}: recording format version {header.get('version')} is not "
                                 f"supported (this hftmem reads version {VERSION})")
        if not first.endswith(b"\n"):
            raise RecordingError(f"{path}: the header line is truncated: no sample was recorded")
        return cls(path, header, len(first))

    @property
    def notice(self) -> str | None:
        """One line for the user when the file is damaged (after iterating), else None."""
        return self.damage.message(self.path) if self.damage else None

    @property
    def complete(self) -> bool:
        """True when the recorder wrote its end line (it stopped on purpose)."""
        return self.end is not None

    def records(self) -> Iterator[dict]:
        """The sample records as stored (mappings as rows or deltas), in order."""
        self.damage, self.end = None, None
        count = 0
        try:
            f = open(self.path, "rb")
        except OSError as e:
            raise recording_oserror(self.path, e, "read") from None
        with f:
            f.seek(self._start)
            offset, lineno = self._start, 1
            for raw in f:
                lineno += 1
                reason = None
                rec = None
                if not raw.endswith(b"\n"):
                    reason = "is truncated (the recorder stopped mid-write)"
                else:
                    try:
                        rec = json.loads(raw)
                    except ValueError as e:
                        reason = f"is corrupt ({str(e).split(':')[0].lower()})"
                    else:
                        if not isinstance(rec, dict) or rec.get("type") not in ("sample", "end"):
                            reason = "is not a sample record"
                        elif rec["type"] == "sample" and not isinstance(rec.get("status"), dict):
                            reason = "is a sample without status"
                if reason is not None:
                    self.damage = Damage(lineno, offset, reason, count)
                    return
                if rec["type"] == "end":
                    self.end = rec
                    self.trailing_after_end = bool(f.read(1))
                    return
                count += 1
                offset += len(raw)
                yield rec

    def target(self) -> TargetInfo:
        """The TargetInfo the header describes (start_ticks 0 if the header predates it)."""
        return target_info(self.header)

    def samples(self) -> Iterator[Sample]:
        """Every sample as the Sample the sampler produced: mappings rebuilt from the last full
        read plus deltas; rollup and mappings None unless read at that sample (a part repeated
        at the top of a rotated file is not a new read); per-thread times and the engine's gap
        histograms carried from their last (slow-cadence) read."""
        decoder = SampleDecoder(self.header)
        for rec in self.records():
            yield decoder.decode(rec)


def _fields(cls, d: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in d.items() if k in names}


def _mapping(fields: list[str], row: list) -> procfs.Mapping:
    return procfs.Mapping(**{k: v for k, v in zip(fields, row) if k in MAPPING_FIELDS})


def _view(d: dict) -> Allocator:
    if "live" in d:
        return PoolView(**_fields(PoolView, d))
    if "used" in d:
        return ArenaView(**_fields(ArenaView, d))
    return RingView(**_fields(RingView, d))


def _sched_from(d: dict | None) -> procfs.SchedInfo:
    d = d or {}
    return procfs.SchedInfo(d.get("policy", "?"), d.get("rt_priority", 0), d.get("nice", 0),
                            frozenset(d.get("affinity", ())))


def target_info(header: dict) -> TargetInfo:
    """The TargetInfo a recording's header describes."""
    return TargetInfo(header.get("pid", 0), header.get("comm", "?"), header.get("exe"),
                      tuple(header.get("cmdline") or ()), header.get("username"),
                      header.get("target_start_time") or 0.0, header.get("host", "?"),
                      _sched_from(header.get("sched")), bool(header.get("engine")),
                      header.get("hftmem_version", "?"), int(header.get("target_start_ticks") or 0))


def _perf(p: dict) -> PerfInterval:
    return PerfInterval(p.get("timestamp_s") or 0.0, p.get("span_s") or 0.0, p.get("intervals") or 0,
                        dict(p.get("values") or {}), frozenset(p.get("unsupported") or ()),
                        frozenset(p.get("not_counted") or ()))


def _engine(e: dict) -> EngineStats:
    kw = _fields(EngineStats, e)
    kw["magic"] = str(e.get("magic", "")).encode("ascii", "replace")
    kw["max_gap_hist"] = tuple(e["max_gap_hist"])
    kw["p999_gap_hist"] = tuple(e["p999_gap_hist"])
    return EngineStats(**kw)


class SampleDecoder:
    """Sample records of one file, in order -> Samples. Keeps what the encoder wrote only now
    and then: the full mapping table (for deltas), per-thread times, the gap histograms."""

    def __init__(self, header: dict) -> None:
        self.header = header
        self.info = target_info(header)
        self.fields = header.get("mapping_fields") or list(MAPPING_FIELDS)
        self.current: dict[tuple[int, str], procfs.Mapping] | None = None
        self.threads: tuple[ThreadTimes, ...] = ()
        self.hists: dict | None = None

    def _mappings(self, rec: dict) -> tuple[procfs.Mapping, ...] | None:
        """This sample's full table if smaps was read at it (a full read or a delta), else None."""
        if "mappings" in rec:
            self.current = {}
            for row in rec["mappings"]:
                m = _mapping(self.fields, row)
                self.current[(m.start, m.path)] = m
            if "mappings_time" in rec:  # repeated at the top of a file, read earlier
                return None
        elif "mappings_delta" in rec and self.current is not None:
            d = rec["mappings_delta"]
            for start, path in d.get("vanished", []):
                self.current.pop((start, path), None)
            for row in d.get("changed", []) + d.get("new", []):
                m = _mapping(self.fields, row)
                self.current[(m.start, m.path)] = m
        else:
            return None
        return tuple(sorted(self.current.values(), key=lambda m: m.start))

    def _process(self, rec: dict) -> ProcessInfo:
        """The identity is the header's; the counters are this sample's."""
        h, p = self.header, rec.get("process", {})
        return ProcessInfo(
            pid=h.get("pid") or 0, name=h.get("comm") or "", cmdline=tuple(h.get("cmdline") or ()),
            exe=h.get("exe"), username=h.get("username"), create_time=h.get("target_start_time") or 0.0,
            cpu_percent=p.get("cpu_percent") or 0.0, rss=p.get("rss") or 0, vms=p.get("vms") or 0,
            uss=None, pss=None, swap=None, num_threads=p.get("num_threads") or 0, threads=self.threads,
            open_files=p.get("open_files"), num_fds=p.get("num_fds"))

    def decode(self, rec: dict) -> Sample:
        """One sample record (as Recording.records() yields it) as a Sample."""
        if self.info.start_ticks == 0 and isinstance(rec.get("stat"), dict):
            # a header without target_start_ticks: the target's stat says it
            self.info = dataclasses.replace(self.info, start_ticks=int(rec["stat"].get("starttime_ticks") or 0))
        if "threads" in rec:
            self.threads = tuple(ThreadTimes(i, u, s) for i, u, s in rec["threads"] or ())
        mappings = self._mappings(rec)
        rollup = None
        if rec.get("rollup") is not None and "rollup_time" not in rec:
            rollup = procfs.Rollup(**_fields(procfs.Rollup, rec["rollup"]))
        engine = None
        e = rec.get("engine")
        if e is not None:
            if "max_gap_hist" in e:
                self.hists = {k: e[k] for k in ("max_gap_hist", "p999_gap_hist")}
            if self.hists is not None:
                engine = _engine({**e, **self.hists})
        return Sample(self.info, rec.get("seq") or 0, rec["time"],
                      procfs.Status(**_fields(procfs.Status, rec["status"])),
                      procfs.Stat(**_fields(procfs.Stat, rec["stat"])), self._process(rec), rollup, mappings,
                      _perf(rec["perf"]) if rec.get("perf") is not None else None, engine,
                      tuple(_view(a) for a in rec.get("allocators") or ()), dict(rec.get("cost_ms") or {}),
                      tuple(rec.get("notes") or ()))


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
