"""Recordings: samples as JSON Lines (`hftmem record`) and back (`hftmem replay`, tests).

Format ``hftmem-recording`` version 1, one JSON object per line, each line written with one
``write(2)`` so a recorder killed with SIGKILL leaves at most its last line incomplete:

- line 1, ``{"type": "header", ...}``: the target (pid, comm, exe, cmdline, host, start time),
  the recorder (hftmem version, interval, cadences), ``mapping_fields`` (column order of the
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
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

from hftmem_tui.model.allocators import ArenaView, PoolView, RingView
from hftmem_tui.model.decode import EngineStats
from hftmem_tui.model.deltas import mapping_deltas, summarize_by_kind
from hftmem_tui.sources import procfs
from hftmem_tui.errors import SourceError
from hftmem_tui.sources.process import ProcessInfo, ThreadTimes
from hftmem_tui.sources.procfs import Mapping
from hftmem_tui.feeds.sampler import LiveSample, PerfInterval, TargetInfo

FORMAT = "hftmem-recording"
VERSION = 1
MAPPING_FIELDS = tuple(f.name for f in dataclasses.fields(Mapping))
END_RESERVE = 256  # bytes kept free under --max-bytes for the end line
_STICKY = ("rollup", "threads", "engine_hists")  # slow parts repeated at the top of each file


class RecordingError(SourceError):
    """A recording cannot be written or read (bad path, not a recording, unknown version)."""


def _json_line(obj: dict) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode()


def _row(m: Mapping) -> list:
    return [getattr(m, f) for f in MAPPING_FIELDS]


def _oserror(path: str, e: OSError, doing: str) -> RecordingError:
    return RecordingError(f"cannot {doing} recording {path}: {e.strerror or e}")


# --------------------------------------------------------------------------- writing


def make_header(info: TargetInfo, *, interval_s: float, smaps_every: int, rollup_every: int,
                budget: float, perf_interval_ms: int | None, notes=(), part: int = 1,
                recorded_at: float | None = None) -> dict:
    """The header line of a recording of ``info``."""
    import time

    sched = dataclasses.asdict(info.sched)
    sched["affinity"] = sorted(sched["affinity"])
    return {
        "type": "header", "format": FORMAT, "version": VERSION, "part": part,
        "pid": info.pid, "comm": info.comm, "exe": info.exe, "cmdline": list(info.cmdline),
        "username": info.username, "host": info.host, "target_start_time": info.create_time,
        "recorded_at": recorded_at if recorded_at is not None else time.time(),
        "hftmem_version": info.hftmem_version, "interval_s": interval_s,
        "smaps_every": smaps_every, "rollup_every": rollup_every, "cost_budget": budget,
        "perf_interval_ms": perf_interval_ms, "engine": info.engine, "sched": sched,
        "mapping_fields": list(MAPPING_FIELDS), "notes": list(notes),
    }


class SampleEncoder:
    """LiveSample -> sample record. Keeps the last full mapping read (for deltas) and the last
    slow parts, so the first sample of a new file can repeat them."""

    def __init__(self) -> None:
        self.known_mappings: tuple[Mapping, ...] | None = None
        self.known_mappings_time: float | None = None
        self._sticky: dict[str, tuple[float, object]] = {}

    def encode(self, s: LiveSample, first_in_file: bool) -> dict:
        rec: dict = {"type": "sample", "seq": s.seq, "time": round(s.time, 6),
                     "status": dataclasses.asdict(s.status), "stat": dataclasses.asdict(s.stat)}
        p = s.process
        rec["process"] = {"cpu_percent": p.cpu_percent, "rss": p.rss, "vms": p.vms,
                          "num_threads": p.num_threads, "open_files": p.open_files, "num_fds": p.num_fds}
        fresh: dict[str, object] = {}
        if s.rollup is not None:
            fresh["rollup"] = dataclasses.asdict(s.rollup)
        if s.mappings is not None:
            # Per-thread CPU times grow with the thread count: keep them at the slow cadence.
            fresh["threads"] = [[t.id, t.user_time, t.system_time] for t in p.threads]
        if s.engine is not None and s.mappings is not None:
            fresh["engine_hists"] = {"max_gap_hist": list(s.engine.max_gap_hist),
                                     "p999_gap_hist": list(s.engine.p999_gap_hist)}
        for key, value in fresh.items():
            self._sticky[key] = (s.time, value)
        if first_in_file:
            for key, (t, value) in self._sticky.items():
                if key not in fresh:
                    fresh[key] = value
                    rec[f"{key}_time"] = t
        if "rollup" in fresh:
            rec["rollup"] = fresh["rollup"]
        if "threads" in fresh:
            rec["threads"] = fresh["threads"]

        if s.mappings is not None:
            prev = self.known_mappings
            self.known_mappings, self.known_mappings_time = s.mappings, s.time
            if first_in_file or prev is None:
                rec["mappings"] = [_row(m) for m in s.mappings]
            else:
                d = mapping_deltas(prev, s.mappings)
                rec["mappings_delta"] = {"changed": [_row(x.after) for x in d.changed],
                                         "new": [_row(m) for m in d.new],
                                         "vanished": [[m.start, m.path] for m in d.vanished]}
            rec["kinds"] = {k: dataclasses.asdict(v) for k, v in summarize_by_kind(s.mappings).items()}
        elif first_in_file and self.known_mappings is not None:
            rec["mappings"] = [_row(m) for m in self.known_mappings]
            rec["mappings_time"] = self.known_mappings_time
            rec["kinds"] = {k: dataclasses.asdict(v) for k, v in summarize_by_kind(self.known_mappings).items()}

        if s.perf is not None:
            rec["perf"] = {"timestamp_s": s.perf.timestamp_s, "span_s": s.perf.span_s,
                           "intervals": s.perf.intervals, "values": s.perf.values,
                           "unsupported": sorted(s.perf.unsupported), "not_counted": sorted(s.perf.not_counted)}
        if s.engine is not None:
            e = dataclasses.asdict(s.engine)
            del e["max_gap_hist"], e["p999_gap_hist"]
            e["magic"] = s.engine.magic.decode("ascii", "replace")
            e["active_scenarios"] = list(s.engine.active_scenarios)
            if "engine_hists" in fresh:
                e.update(fresh["engine_hists"])  # type: ignore[arg-type]
            rec["engine"] = e
            rec["allocators"] = [dataclasses.asdict(a) for a in s.allocators]
        rec["cost_ms"] = s.cost_ms
        if s.notes:
            rec["notes"] = list(s.notes)
        return rec


class RecordingWriter:
    """Appends JSON lines to ``path``, one write(2) per line (no user-space buffer to lose).

    With ``max_bytes``, no file grows past it: with ``rotate`` K > 0 the full file becomes
    ``path.1`` (``path.1`` -> ``path.2``... the oldest beyond K is deleted) and a new file starts
    with ``new_header(part)``; with K = 0 recording stops ("size cap"). Raises RecordingError.
    """

    def __init__(self, path: str, *, max_bytes: int | None = None, rotate: int = 0) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.rotate = rotate
        self.part = 0
        self.size = 0
        self.samples_in_file = 0
        self.samples = 0
        self._fd: int | None = None

    def open(self, header: dict) -> None:
        """Create (truncate) the file if not yet created, and write the header."""
        if self._fd is None:
            self.create()
        self.part += 1
        self.size = 0
        self.samples_in_file = 0
        self._write(_json_line({**header, "part": self.part}))

    def create(self) -> None:
        """Create (truncate) the file: call early so a bad path fails before any sampling."""
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise _oserror(self.path, e, "create") from None

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise RecordingError(f"cannot write recording {self.path}: no space left on device") from None
            raise _oserror(self.path, e, "write") from None
        self.size += len(data)

    def fits(self, line: bytes) -> bool:
        """Whether ``line`` (and a later end line) fits under max_bytes in the current file.
        A file's first sample always fits: a file holds at least one sample."""
        if self.max_bytes is None or self.samples_in_file == 0:
            return True
        return self.size + len(line) + END_RESERVE <= self.max_bytes

    def write_sample(self, line: bytes) -> None:
        self._write(line)
        self.samples_in_file += 1
        self.samples += 1

    def next_file(self, header: dict) -> None:
        """Close the current file (end line "rotated") and start a new one, shifting old parts."""
        self.end("rotated", next=os.path.basename(self.path))
        try:
            oldest = f"{self.path}.{self.rotate}"
            if os.path.exists(oldest):
                os.unlink(oldest)
            for i in range(self.rotate - 1, 0, -1):
                if os.path.exists(f"{self.path}.{i}"):
                    os.replace(f"{self.path}.{i}", f"{self.path}.{i + 1}")
            os.replace(self.path, f"{self.path}.1")
        except OSError as e:
            raise _oserror(self.path, e, "rotate") from None
        self.open(header)

    def end(self, reason: str, **extra) -> None:
        """Write the end line and close the file (safe to call twice)."""
        if self._fd is None:
            return
        import time

        try:
            self._write(_json_line({"type": "end", "time": round(time.time(), 6), "reason": reason,
                                    "samples": self.samples_in_file, **extra}))
        finally:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        """Close without an end line; a file created but never given a header is removed."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            if self.part == 0:
                try:
                    os.unlink(self.path)
                except OSError:
                    pass


def encode_line(record: dict) -> bytes:
    """One record as a JSON line (compact, no NaN)."""
    return _json_line(record)


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
            raise _oserror(path, e, "read") from None
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
            raise _oserror(self.path, e, "read") from None
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

    def samples(self) -> Iterator[dict]:
        """Every sample as a full picture, shaped like ``Snapshot.to_json()``: mappings rebuilt
        from the last full read plus deltas, slow parts (rollup, mappings, threads) carried
        forward. Extra keys: ``seq``, ``fresh`` (parts read at this sample), ``kinds``,
        ``cost_ms``, ``perf_span_s`` (seconds of counting in ``perf``), and ``rollup_time`` /
        ``mappings_time`` (when the carried part was read)."""
        h = self.header
        fields = h.get("mapping_fields") or list(MAPPING_FIELDS)
        identity = {"pid": h.get("pid"), "name": h.get("comm"), "cmdline": h.get("cmdline") or [],
                    "exe": h.get("exe"), "username": h.get("username"),
                    "create_time": h.get("target_start_time")}
        current: dict[tuple[int, str], dict] | None = None
        carried: dict[str, tuple[float, object]] = {}
        for rec in self.records():
            t = rec["time"]
            fresh = ["status", "stat", "process"]
            if "mappings" in rec:
                current = {}
                for row in rec["mappings"]:
                    m = _mapping_dict(fields, row)
                    current[(m["start"], m["path"])] = m
                if "mappings_time" not in rec:
                    fresh.append("mappings")
                carried["mappings"] = (rec.get("mappings_time", t), None)
            elif "mappings_delta" in rec and current is not None:
                d = rec["mappings_delta"]
                for start, path in d.get("vanished", []):
                    current.pop((start, path), None)
                for row in d.get("changed", []) + d.get("new", []):
                    m = _mapping_dict(fields, row)
                    current[(m["start"], m["path"])] = m
                fresh.append("mappings")
                carried["mappings"] = (t, None)
            for key, time_key in (("rollup", "rollup_time"), ("threads", "threads_time"), ("kinds", "mappings_time")):
                if key in rec:
                    carried[key] = (rec.get(time_key, t), rec[key])
                    if time_key not in rec:
                        fresh.append(key)
            if "engine" in rec and "max_gap_hist" in rec["engine"]:
                carried["engine_hists"] = (t, {k: rec["engine"][k] for k in ("max_gap_hist", "p999_gap_hist")})
            process = {**identity, **rec.get("process", {}), "uss": None, "pss": None, "swap": None,
                       "threads": [{"id": i, "user_time": u, "system_time": s}
                                   for i, u, s in (carried.get("threads", (0, []))[1] or [])]}
            engine = rec.get("engine")
            if engine is not None and "max_gap_hist" not in engine and "engine_hists" in carried:
                engine = {**engine, **carried["engine_hists"][1]}  # type: ignore[dict-item]
            perf = rec.get("perf")
            if perf is not None:  # PerfSample's shape; the span it covers goes beside it
                perf = {k: perf.get(k) for k in ("timestamp_s", "values", "unsupported", "not_counted")}
            out = {
                "pid": h.get("pid"), "time": t, "seq": rec.get("seq"), "status": rec["status"],
                "stat": rec.get("stat"), "sched": h.get("sched"), "process": process,
                "rollup": carried["rollup"][1] if "rollup" in carried else None,
                "mappings": sorted(current.values(), key=lambda m: m["start"]) if current is not None else [],
                "numa": None, "perf": perf, "perf_span_s": rec["perf"].get("span_s") if perf else None,
                "engine": engine,
                "allocators": rec.get("allocators", []), "notes": rec.get("notes", []),
                "kinds": carried["kinds"][1] if "kinds" in carried else None,
                "cost_ms": rec.get("cost_ms", {}), "fresh": fresh,
            }
            for key in ("rollup", "mappings"):
                if key in carried:
                    out[f"{key}_time"] = carried[key][0]
            yield out


def _mapping_dict(fields: list[str], row: list) -> dict:
    m = dict(zip(fields, row))
    obj = Mapping(**{k: v for k, v in m.items() if k in MAPPING_FIELDS})
    m.update(mode=obj.mode, name=obj.name, kind=obj.kind, dirty_kb=obj.dirty_kb)
    return m


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


# --------------------------------------------------------------------------- recorded feed


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
                      header.get("hftmem_version", "?"))


def _fields(cls, d: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in d.items() if k in names}


def _view(d: dict) -> PoolView | ArenaView | RingView:
    if "live" in d:
        return PoolView(**_fields(PoolView, d))
    if "used" in d:
        return ArenaView(**_fields(ArenaView, d))
    return RingView(**_fields(RingView, d))


def live_sample(full: dict, *, fresh_only: bool = True) -> LiveSample:
    """One ``Recording.samples()`` dict back as the LiveSample the sampler produced.

    With ``fresh_only``, rollup and mappings are None unless read at this sample (as live).
    """
    fresh = set(full.get("fresh", ()))
    proc = full["process"]
    process = ProcessInfo(
        pid=proc.get("pid") or full.get("pid") or 0, name=proc.get("name") or "", cmdline=tuple(proc.get("cmdline") or ()),
        exe=proc.get("exe"), username=proc.get("username"), create_time=proc.get("create_time") or 0.0,
        cpu_percent=proc.get("cpu_percent") or 0.0, rss=proc.get("rss") or 0, vms=proc.get("vms") or 0,
        uss=None, pss=None, swap=None, num_threads=proc.get("num_threads") or 0,
        threads=tuple(ThreadTimes(t["id"], t["user_time"], t["system_time"]) for t in proc.get("threads", ())),
        open_files=proc.get("open_files"), num_fds=proc.get("num_fds"))
    rollup = None
    if full.get("rollup") is not None and (not fresh_only or "rollup" in fresh):
        rollup = procfs.Rollup(**_fields(procfs.Rollup, full["rollup"]))
    mappings = None
    if full.get("mappings") and (not fresh_only or "mappings" in fresh):
        mappings = tuple(procfs.Mapping(**_fields(procfs.Mapping, m)) for m in full["mappings"])
    perf = None
    if full.get("perf") is not None:
        p = full["perf"]
        span = full.get("perf_span_s") or 0.0
        perf = PerfInterval(p.get("timestamp_s") or 0.0, span, 0, dict(p.get("values") or {}),
                            frozenset(p.get("unsupported") or ()), frozenset(p.get("not_counted") or ()))
    engine = None
    e = full.get("engine")
    if e is not None and "max_gap_hist" in e:
        kw = _fields(EngineStats, e)
        kw["magic"] = str(e.get("magic", "")).encode("ascii", "replace")
        kw["max_gap_hist"] = tuple(e["max_gap_hist"])
        kw["p999_gap_hist"] = tuple(e["p999_gap_hist"])
        engine = EngineStats(**kw)
    return LiveSample(full.get("seq") or 0, full["time"], procfs.Status(**_fields(procfs.Status, full["status"])),
                      procfs.Stat(**_fields(procfs.Stat, full["stat"])), process, rollup, mappings, perf, engine,
                      tuple(_view(a) for a in full.get("allocators") or ()),
                      dict(full.get("cost_ms") or {}), tuple(full.get("notes") or ()))


class RecordedFeed:
    """A SampleFeed over a recording (model.feed): ``live = False``; each ``sample()`` is the
    next recorded sample; past the last, FeedEnded. ``cursor`` is the index of the next one.

    Raises RecordingError from the constructor for a file that is not a readable recording.
    """

    live = False

    def __init__(self, path: str) -> None:
        self.recording = Recording.open(path)
        self.pid = int(self.recording.header.get("pid") or 0)
        self.samples: list[LiveSample] = [live_sample(s) for s in self.recording.samples()]
        self.cursor = 0
        self.interval_s = float(self.recording.header.get("interval_s") or 1.0)

    def start(self) -> TargetInfo:
        return target_info(self.recording.header)

    def sample(self) -> LiveSample:
        from hftmem_tui.feeds.feed import FeedEnded

        if self.cursor >= len(self.samples):
            raise FeedEnded(f"end of recording {self.recording.path}")
        s = self.samples[self.cursor]
        self.cursor += 1
        return s

    def close(self) -> None:
        pass
