"""Writing recordings (`hftmem record`): Samples as the JSON Lines of feeds.recording's format.

Each line is written with one ``write(2)``, so a recorder killed with SIGKILL leaves at most its
last line incomplete. Deltas and the slow parts repeated at the top of each file are described
with the format in feeds/recording.py.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import time

from hftmem_tui.feeds.recording import FORMAT, MAPPING_FIELDS, VERSION, RecordingError, recording_oserror
from hftmem_tui.feeds.sample import Sample, TargetInfo
from hftmem_tui.model.deltas import mapping_deltas, summarize_by_kind
from hftmem_tui.sources.procfs import Mapping

END_RESERVE = 256  # bytes kept free under --max-bytes for the end line


def encode_line(record: dict) -> bytes:
    """One record as a JSON line (compact, no NaN)."""
    return (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()


def _row(m: Mapping) -> list:
    return [getattr(m, f) for f in MAPPING_FIELDS]


def make_header(info: TargetInfo, *, interval_s: float, smaps_every: int, rollup_every: int,
                budget: float, perf_interval_ms: int | None, notes=(), part: int = 1,
                recorded_at: float | None = None) -> dict:
    """The header line of a recording of ``info``."""
    sched = dataclasses.asdict(info.sched)
    sched["affinity"] = sorted(sched["affinity"])
    return {
        "type": "header", "format": FORMAT, "version": VERSION, "part": part,
        "pid": info.pid, "comm": info.comm, "exe": info.exe, "cmdline": list(info.cmdline),
        "username": info.username, "host": info.host, "target_start_time": info.create_time,
        "target_start_ticks": info.start_ticks,
        "recorded_at": recorded_at if recorded_at is not None else time.time(),
        "hftmem_version": info.hftmem_version, "interval_s": interval_s,
        "smaps_every": smaps_every, "rollup_every": rollup_every, "cost_budget": budget,
        "perf_interval_ms": perf_interval_ms, "engine": info.engine, "sched": sched,
        "mapping_fields": list(MAPPING_FIELDS), "notes": list(notes),
    }


class SampleEncoder:
    """Sample -> sample record. Keeps the last full mapping read (for deltas) and the last
    slow parts, so the first sample of a new file can repeat them."""

    def __init__(self) -> None:
        self.known_mappings: tuple[Mapping, ...] | None = None
        self.known_mappings_time: float | None = None
        self._sticky: dict[str, tuple[float, object]] = {}

    def encode(self, s: Sample, first_in_file: bool) -> dict:
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
        self._write(encode_line({**header, "part": self.part}))

    def create(self) -> None:
        """Create (truncate) the file: call early so a bad path fails before any sampling."""
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise recording_oserror(self.path, e, "create") from None

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
            raise recording_oserror(self.path, e, "write") from None
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
            raise recording_oserror(self.path, e, "rotate") from None
        self.open(header)

    def end(self, reason: str, **extra) -> None:
        """Write the end line and close the file (safe to call twice)."""
        if self._fd is None:
            return
        try:
            self._write(encode_line({"type": "end", "time": round(time.time(), 6), "reason": reason,
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
