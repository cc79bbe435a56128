"""Recording format: encoder + writer + reader on samples parsed from captured /proc text (no process)."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from hftmem_tui.feeds.recording import (
    RecordedFeed,
    Recording,
    RecordingError,
    recording_parts,
)
from hftmem_tui.feeds.recording_writer import (
    END_RESERVE,
    RecordingWriter,
    SampleEncoder,
    encode_line,
    make_header,
)
from hftmem_tui.feeds.sample import PerfInterval
from hftmem_tui.model.cadence import DutyCycle
from hftmem_tui.sources import procfs
from tests.conftest import FIXTURES
from tests.helpers import (
    INFO,
    MAPS,
    STATUS,
    recorded_sample,
    recording_header,
    write_recording,
)

FIX = FIXTURES / "proc"
def _grown_maps():
    """MAPS with the first mapping gone, the largest one grown, and one new mapping."""
    big = max(MAPS, key=lambda m: m.rss_kb)
    rest = [dataclasses.replace(m, rss_kb=m.rss_kb + 400) if m is big else m for m in MAPS[1:]]
    new = procfs.Mapping(0x7F0000000000, 0x7F0000100000, "rw-p", 0, "00:00", 0, "", size_kb=1024, rss_kb=512)
    return tuple(sorted(rest + [new], key=lambda m: m.start))


def test_round_trip_rebuilds_mappings_from_deltas(tmp_path):
    """The reader rebuilds each full mapping table from the first read plus deltas."""
    grown = _grown_maps()
    path = write_recording(tmp_path / "r.jsonl", [recorded_sample(1, mappings=MAPS), recorded_sample(2, rollup=False),
                                         recorded_sample(3, mappings=grown, rss_kb=STATUS.vm_rss_kb + 912)])
    lines = path.read_bytes().splitlines()
    assert "mappings_delta" in json.loads(lines[3]) and "mappings" not in json.loads(lines[3])
    rec = Recording.open(str(path))
    assert rec.header["pid"] == STATUS.tgid and rec.header["host"] == "box1" and rec.header["version"] == 1
    got = list(rec.samples())
    assert rec.notice is None and rec.complete and rec.end["reason"] == "duration reached"
    assert [s.seq for s in got] == [1, 2, 3]
    assert got[2].mappings == grown
    assert got[0].mappings == MAPS
    assert got[1].mappings is None and got[1].rollup is None  # not read at that sample, as live
    assert got[2].status.vm_rss_kb == STATUS.vm_rss_kb + 912
    assert got[2].process.cmdline == ("sleep", "1000")  # identity comes from the header
    assert all(s.target == INFO for s in got)


def test_truncated_last_line_reads_up_to_it(tmp_path):
    """A recorder killed mid-write: every whole sample reads, the notice names the line."""
    path = write_recording(tmp_path / "r.jsonl", [recorded_sample(i, mappings=MAPS if i == 1 else None) for i in range(1, 6)], end=None)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # cut the 5th sample short
    rec = Recording.open(str(path))
    got = list(rec.samples())
    assert [s.seq for s in got] == [1, 2, 3, 4]
    assert not rec.complete
    assert rec.damage.line == 6 and "truncated" in rec.notice and "read 4 samples" in rec.notice
    assert rec.damage.offset == data.rindex(b"\n", 0, len(data) - 1) + 1


def test_corrupt_middle_line_is_skipped_and_named(tmp_path):
    """A corrupt line in the middle is skipped with its number and reason; the rest reads."""
    path = write_recording(tmp_path / "r.jsonl", [recorded_sample(i, mappings=MAPS if i == 1 else None) for i in range(1, 6)])
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3][:30] + b"\x00garbage" + lines[3][30:]
    path.write_bytes(b"\n".join(lines))
    rec = Recording.open(str(path))
    assert [s.seq for s in rec.samples()] == [1, 2, 4, 5]
    assert rec.damage.line == 4 and "corrupt" in rec.notice and "\n" not in rec.notice
    assert "line 4" in rec.notice and "skipped" in rec.notice and rec.complete


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"hello world\n", "not a hftmem recording"),
    (b'{"type":"header","format":"hftmem-recording","version":99}\n', "version 99 is not supported"),
    (b'{"type":"header","format":"hftmem-rec', "header line is truncated"),
    (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), "not a hftmem recording"),
])
def test_bad_files_give_one_line(tmp_path, content, message):
    p = tmp_path / "bad"
    p.write_bytes(content)
    with pytest.raises(RecordingError) as e:
        Recording.open(str(p))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(RecordingError, match="No such file"):
        Recording.open(str(tmp_path / "nope"))
    with pytest.raises(RecordingError, match="directory"):
        Recording.open(str(tmp_path))


def test_rotation_keeps_k_self_contained_files_under_the_cap(tmp_path):
    """Every file is under the cap, starts with a header, and its first sample has the full table."""
    path = tmp_path / "r.jsonl"
    one = len(encode_line(SampleEncoder().encode(recorded_sample(1, mappings=MAPS), first_in_file=True)))
    cap = one + 6 * len(encode_line(SampleEncoder().encode(recorded_sample(2), first_in_file=False))) + 2048
    w = RecordingWriter(str(path), max_bytes=cap, rotate=2)
    w.open(recording_header())
    enc = SampleEncoder()
    for i in range(1, 40):
        s = recorded_sample(i, mappings=MAPS if i == 1 else None)
        line = encode_line(enc.encode(s, first_in_file=w.samples_in_file == 0))
        if not w.fits(line):
            w.next_file(recording_header())
            line = encode_line(enc.encode(s, first_in_file=True))
        w.write_sample(line)
    w.end("stopped by SIGTERM")
    parts = recording_parts(str(path))
    assert parts == [f"{path}.2", f"{path}.1", str(path)] and not os.path.exists(f"{path}.3")
    seqs = []
    for p in parts:
        assert os.path.getsize(p) <= cap
        rec = Recording.open(p)
        got = list(rec.samples())
        assert rec.complete and rec.notice is None and got
        first = next(rec.records())  # the table read before this file began, repeated: it stands alone
        assert len(first["mappings"]) == len(MAPS) and got[0].rollup is not None
        seqs += [s.seq for s in got]
    assert seqs == list(range(seqs[0], 40))  # contiguous: nothing lost between parts
    assert Recording.open(parts[0]).header["part"] < Recording.open(parts[-1]).header["part"]


def test_fits_reserves_room_for_the_end_line(tmp_path):
    w = RecordingWriter(str(tmp_path / "r"), max_bytes=4096)
    w.open(recording_header())
    w.write_sample(b"x" * 10 + b"\n")
    assert not w.fits(b"y" * (4096 - w.size - END_RESERVE + 1))
    assert w.fits(b"y" * (4096 - w.size - END_RESERVE))
    w.end("size cap")


def test_bad_output_paths(tmp_path):
    with pytest.raises(RecordingError, match="No such file or directory"):
        RecordingWriter(str(tmp_path / "missing" / "r.jsonl")).create()
    with pytest.raises(RecordingError, match="Is a directory"):
        RecordingWriter(str(tmp_path)).create()


def test_duty_cycle_by_count_and_by_cost():
    d = DutyCycle(every=3, budget=0.01)
    assert d.due(0.0)
    d.ran(0.0, 0.002)  # 2 ms: allowed every 0.2 s
    assert [d.due(t) for t in (1.0, 2.0, 3.0)] == [False, False, True]
    d.ran(3.0, 3.5)  # 500 ms: now at most every 50 s
    assert [d.due(3.0 + k) for k in (1, 2, 3, 10)] == [False, False, False, False]
    assert d.skipped == 2 and d.due(60.0)
    with pytest.raises(ValueError):
        DutyCycle(every=0)


def test_a_sample_reads_back_as_it_was_written(tmp_path):
    """Samples -> recording -> Samples: equal, but for what the format keeps at the slow cadence."""
    perf = PerfInterval(2.0, 1.0, 1, {"page-faults": 12.0}, frozenset({"cycles"}), frozenset())
    written = [dataclasses.replace(recorded_sample(1, mappings=MAPS), perf=perf), recorded_sample(2, rollup=False),
               recorded_sample(3, mappings=_grown_maps())]
    got = list(Recording.open(str(write_recording(tmp_path / "r.jsonl", written))).samples())
    assert got[0] == written[0] and got[2] == written[2]
    # per-thread times are written with full smaps reads only: sample 2 carries sample 1's
    assert got[1] == dataclasses.replace(written[1], process=dataclasses.replace(
        written[1].process, threads=written[0].process.threads))


def test_the_committed_recording_replays_and_rewrites_the_same(tmp_path):
    """The fixture, written before headers had target_start_ticks (same format version), reads
    with the identity from its first stat; re-encoded by today's writer, it reads back the same."""
    feed = RecordedFeed(str(FIXTURES / "recordings" / "leak_40s.jsonl"))
    assert "target_start_ticks" not in feed.recording.header and feed.recording.header["version"] == 1
    assert len(feed.samples) == 41 and feed.start().start_ticks == feed.samples[0].stat.starttime_ticks > 0
    assert sum(s.mappings is not None for s in feed.samples) == 5 and all(s.engine for s in feed.samples[1:])
    w = RecordingWriter(str(tmp_path / "again.jsonl"))
    h = feed.recording.header
    w.open(make_header(feed.start(), interval_s=h["interval_s"], smaps_every=h["smaps_every"],
                       rollup_every=h["rollup_every"], budget=h["cost_budget"],
                       perf_interval_ms=h["perf_interval_ms"]))
    enc = SampleEncoder()
    for s in feed.samples:
        w.write_sample(encode_line(enc.encode(s, first_in_file=w.samples_in_file == 0)))
    w.end("duration reached")
    again = Recording.open(str(tmp_path / "again.jsonl"))
    assert again.header["target_start_ticks"] == feed.start().start_ticks
    assert list(again.samples()) == feed.samples
