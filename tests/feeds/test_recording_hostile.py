"""Hostile recordings: every line checked against the format, a bad line skipped and named,
never a traceback, memory bounded by what is kept (not by what the file holds)."""

from __future__ import annotations

import json
import math
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hftmem_tui.feeds.recording import RecordedFeed, Recording, RecordingError
from hftmem_tui.feeds.recording_check import MAX_LINE_BYTES
from tests.helpers import MAPS, recorded_sample, write_recording

N_SAMPLES = 5  # lines 2..6 are samples, line 7 the end line


@pytest.fixture(scope="module")
def base_lines(tmp_path_factory) -> list[bytes]:
    path = write_recording(tmp_path_factory.mktemp("base") / "r.jsonl",
                  [recorded_sample(i, mappings=MAPS if i in (1, 4) else None) for i in range(1, N_SAMPLES + 1)])
    return path.read_bytes().splitlines(keepends=True)


def _with(lines: list[bytes], tmp_path, name="hostile.jsonl"):
    p = tmp_path / name
    p.write_bytes(b"".join(lines))
    return p


def _dump(v) -> bytes:
    return json.dumps(v, separators=(",", ":")).encode()  # allow_nan: NaN and Infinity as JS literals


def _set(line: bytes, path: tuple, value) -> bytes:
    rec = json.loads(line)
    node = rec
    for k in path[:-1]:
        node = node[k]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return _dump(rec) + b"\n"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e308, -1e308, 2**64, -1]) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6)

FIELD_PATHS = [("time",), ("seq",), ("status",), ("status", "vm_rss_kb"), ("status", "name"), ("stat",),
               ("stat", "minflt"), ("stat", "starttime_ticks"), ("process",), ("process", "rss"),
               ("process", "cpu_percent"), ("rollup",), ("rollup", "rss_kb"), ("threads",), ("cost_ms",),
               ("notes",), ("perf",), ("engine",), ("allocators",), ("mappings",), ("type",)]


def _check_read(path) -> tuple[Recording, list]:
    """Read every sample; the reader must not raise (a bad header raises RecordingError only)."""
    feed = RecordedFeed(str(path))
    times = [s.time for s in feed.samples]
    assert times == sorted(times) and all(math.isfinite(t) for t in times)
    rec = feed.recording
    for d in rec.skipped:
        assert f"line {d.line}" in d.message(str(path)) and "\n" not in d.reason
    if rec.skipped:
        assert rec.notice and "\n" not in rec.notice and f"line {rec.skipped[0].line}" in rec.notice
    return rec, feed.samples


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(2, N_SAMPLES + 1), st.sampled_from(FIELD_PATHS),
                                json_values | st.just(KeyError)), min_size=1, max_size=3))
def test_random_values_in_any_field_are_skipped_or_read_never_raise(base_lines, tmp_path, edits):
    lines = list(base_lines)
    touched = set()
    for lineno, path, value in edits:
        try:
            lines[lineno - 1] = _set(lines[lineno - 1], path, value)
        except (KeyError, TypeError, IndexError):  # the path's parent was replaced by an earlier edit
            continue
        touched.add(lineno)
    rec, samples = _check_read(_with(lines, tmp_path))
    first_touched = min(touched, default=len(lines) + 1)
    # only an edited line, or one after it (its time may now step back), is ever skipped
    assert all(d.line >= first_touched for d in rec.skipped)
    assert len(samples) + rec.skipped_count == N_SAMPLES or not rec.complete


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(max_size=200), where=st.integers(2, N_SAMPLES + 1), cut=st.integers(1, 400))
def test_random_bytes_and_cut_lines_never_raise(base_lines, tmp_path, junk, where, cut):
    lines = list(base_lines)
    lines[where - 1] = lines[where - 1][:cut] + junk + b"\n"
    lines[-1] = lines[-1][: len(lines[-1]) // 2]  # and a truncated last line
    rec, samples = _check_read(_with(lines, tmp_path))
    assert all(d.line in (where, len(lines)) or d.line > where for d in rec.skipped)


@pytest.mark.parametrize("line3, reason", [
    (lambda l: _set(l, ("time",), "1700000103"), "time is a string ('1700000103'), not a number"),
    (lambda l: _set(l, ("status",), None), "status is null, not an object"),
    (lambda l: _set(l, ("stat", "minflt"), "12"), "stat.minflt is a string ('12'), not an integer"),
    (lambda l: l.replace(b'"time":1700000103.0', b'"time":NaN'), "holds NaN, not a finite number"),
    (lambda l: l.replace(b'"time":1700000103.0', b'"time":Infinity'), "holds Infinity, not a finite number"),
    (lambda l: l.replace(b'"time":1700000103.0', b'"time":-Infinity'), "holds -Infinity"),
    (lambda l: l.replace(b'"time":1700000103.0', b'"time":1e308'), "holds the number 1e308, out of range"),
    (lambda l: l.replace(b'"time":1700000103.0', b'"time":1e400'), "holds the number 1e400, out of range"),
    (lambda l: l.replace(b'"seq":3', b'"seq":' + b"9" * 5000), "5000-digit integer"),
    (lambda l: _set(l, ("time",), KeyError), "has no time"),
    (lambda l: _set(l, ("time",), 1700000000.0), "steps back in time 102.000 s before line 3"),
    (lambda l: b"[" * 100_000 + b"]" * 100_000 + b"\n", "nests brackets more than 16 deep"),
    (lambda l: b'{"type":"sample","x":' + b"[" * 100_000 + b"\n", "more than 16 deep or leaves them unbalanced"),
    (lambda l: _set(l, ("process", "rss"), 1.5), "process.rss is the number 1.5, not an integer"),
    (lambda l: _set(l, ("mappings",), [[1, 2]]), "mappings[0] has no perms"),
    (lambda l: _set(l, ("threads",), [["a", 0, 0]]), "threads[0] is a string ('a'), not an integer"),
    (lambda l: _set(l, ("type",), "header"), "is not a sample record"),
    (lambda l: l[:-2] + b',"x":"\xc3\x28"}\n', "is not UTF-8 text"),
])
def test_each_hostile_line_is_skipped_with_its_number_and_why(base_lines, tmp_path, line3, reason):
    """Line 4 (the third sample) is made hostile: it alone is skipped, the notice says why."""
    lines = list(base_lines)
    lines[3] = line3(lines[3])
    rec, samples = _check_read(_with(lines, tmp_path))
    assert [s.seq for s in samples] == [1, 2, 4, 5]
    assert [d.line for d in rec.skipped] == [5 if "steps back" in reason else 4] or "steps back" in reason
    assert reason in rec.notice, rec.notice
    assert rec.complete and "read 4 samples" in rec.notice


def test_a_clock_stepping_back_skips_the_sample_that_goes_back(base_lines, tmp_path):
    lines = list(base_lines)
    lines[3] = _set(lines[3], ("time",), 1700000101.5)  # sample 3 goes back to between 1 and 2
    rec, samples = _check_read(_with(lines, tmp_path))
    assert [s.seq for s in samples] == [1, 2, 4, 5] and rec.skipped[0].line == 4
    assert "steps back in time 0.500 s before line 3" in rec.notice


@pytest.mark.parametrize("field, value, reason", [
    ("pid", "1234", "pid is a string ('1234'), not an integer"),
    ("pid", None, "pid is null, not an integer"),
    ("pid", -5, "pid is the number -5, out of range"),
    ("pid", KeyError, "has no pid"),
    ("cmdline", "sleep 1000", "cmdline is a string"),
    ("sched", [], "sched is a list, not an object"),
    ("interval_s", 0, "interval_s is the number 0, out of range"),
    ("target_start_time", 1e300, "holds the number 1e+300, out of range"),
    ("target_start_time", 1e12, "target_start_time is the number 1000000000000.0, out of range"),
    ("comm", {"a": 1}, "comm is an object, not a string"),
])
def test_a_header_with_wrong_types_refuses_with_one_line(base_lines, tmp_path, field, value, reason):
    lines = list(base_lines)
    lines[0] = _set(lines[0], (field,), value)
    with pytest.raises(RecordingError) as e:
        RecordedFeed(str(_with(lines, tmp_path)))
    msg = str(e.value)
    assert reason in msg and "line 1" in msg and "\n" not in msg, msg


HEADER_FIELDS = ["pid", "comm", "exe", "cmdline", "username", "host", "target_start_time", "target_start_ticks",
                 "hftmem_version", "interval_s", "engine", "sched", "mapping_fields", "notes", "version", "format"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.sampled_from(HEADER_FIELDS), json_values | st.just(KeyError)), min_size=1, max_size=3))
def test_random_header_values_read_or_refuse_in_one_line(base_lines, tmp_path, edits):
    first = base_lines[0]
    for field, value in edits:
        if value is not KeyError or field in json.loads(first):
            first = _set(first, (field,), value)
    try:
        rec, samples = _check_read(_with([first, *base_lines[1:]], tmp_path))
    except RecordingError as e:
        assert "\n" not in str(e)
    else:
        assert rec.skipped_count + len(samples) == N_SAMPLES


def test_a_header_holding_nan_or_deep_nesting_refuses_with_one_line(base_lines, tmp_path):
    for first in (base_lines[0].replace(b'"interval_s":1.0', b'"interval_s":NaN'),
                  b'{"type":"header","format":"hftmem-recording","version":1,"x":' + b"[" * 50_000 + b"\n"):
        with pytest.raises(RecordingError, match="line 1, the header, (holds NaN|nests brackets)"):
            Recording.open(str(_with([first, *base_lines[1:]], tmp_path)))


def test_a_file_of_garbage_keeps_a_bounded_list_of_reasons(base_lines, tmp_path):
    lines = [base_lines[0], *[b"not json %d\n" % i for i in range(5000)], *base_lines[1:]]
    rec, samples = _check_read(_with(lines, tmp_path))
    assert len(samples) == N_SAMPLES and rec.skipped_count == 5000 and len(rec.skipped) <= 100
    assert "5000 lines skipped" in rec.notice and "line 2 " in rec.notice


async def test_a_50mb_line_is_measured_not_held(base_lines, tmp_path):
    """One valid-looking 50 MB line: skipped as over the limit; memory stays far below its size."""
    huge = b'{"type":"sample","notes":["' + b"x" * (50 << 20) + b'"]}\n'
    path = _with([*base_lines[:3], huge, *base_lines[3:]], tmp_path)
    del huge
    tracemalloc.start()
    try:
        feed = RecordedFeed(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak >> 20} MiB reading a 50 MiB line"
    assert len(feed.samples) == N_SAMPLES and feed.recording.skipped[0].line == 4
    assert f"over the {MAX_LINE_BYTES >> 20} MiB line limit" in feed.recording.notice
    bar = await _replay(path)  # the TUI shows the notice
    assert "line 4" in bar and "line limit" in bar, bar


def test_hftmem_replay_refuses_a_bad_header_or_a_file_without_samples_in_one_line(base_lines, tmp_path):
    from tests.conftest import run_cli

    bad_header = _with([_set(base_lines[0], ("pid",), "1234"), *base_lines[1:]], tmp_path, "h.jsonl")
    no_samples = _with([base_lines[0], b"[" * 100_000 + b"\n", b'{"type":"sample","time":NaN}\n'], tmp_path, "n.jsonl")
    for path, why in ((bad_header, "pid is a string ('1234'), not an integer"),
                      (no_samples, "2 lines skipped, read 0 samples; line 2")):
        r = run_cli("replay", str(path))
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and why in r.stderr, r.stderr
        assert r.stderr.startswith("hftmem: ") and "Traceback" not in r.stderr and r.stdout == ""


def test_a_long_line_under_the_limit_still_reads(base_lines, tmp_path):
    """A line longer than one read chunk but under the limit is read whole (a big mapping table)."""
    rows = json.loads(base_lines[1])["mappings"]
    big = _set(base_lines[1], ("mappings",), rows * (3_000_000 // len(base_lines[1]) + 1))
    assert len(big) > 2 << 20
    rec, samples = _check_read(_with([base_lines[0], big, *base_lines[2:]], tmp_path))
    assert not rec.skipped and len(samples) == N_SAMPLES and samples[0].mappings


# --------------------------------------------------------------------------- the replay TUI


async def _replay(path) -> str:
    """Run the replay TUI (pilot) on ``path`` through every pane and the cursor keys; the bar text."""
    from hftmem_tui.ui.replay import ReplayApp, ReplayBar
    from tests.helpers import text_of

    app = ReplayApp(RecordedFeed(str(path)), at="start")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for key in ("full_stop", "end", "comma", "home", "1", "2", "3", "4", "5", "6", "7", "8", "9", "end"):
            await pilot.press(key)
        await pilot.pause()
        bar = text_of(app.query_one(ReplayBar))
    assert app.return_code in (None, 0)
    return bar


async def test_replay_tui_shows_each_hostile_line_as_a_notice(base_lines, tmp_path):
    lines = list(base_lines)
    lines[2] = lines[2].replace(b'"time":1700000102.0', b'"time":NaN')
    lines[4] = b"[" * 100_000 + b"\n"
    bar = await _replay(_with(lines, tmp_path))
    assert "damaged recording" in bar and "2 lines skipped" in bar and "line 3" in bar, bar


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(2, N_SAMPLES + 1), st.sampled_from(FIELD_PATHS), json_values),
                      min_size=1, max_size=4))
async def test_replay_tui_never_raises_on_random_field_values(base_lines, tmp_path, edits):
    lines = list(base_lines)
    for lineno, path, value in edits:
        try:
            lines[lineno - 1] = _set(lines[lineno - 1], path, value)
        except (KeyError, TypeError, IndexError):
            continue
    path = _with(lines, tmp_path)
    feed = RecordedFeed(str(path))
    if not feed.samples:
        return  # `hftmem replay` refuses in one line (run_replay), nothing to show
    bar = await _replay(path)
    for d in feed.recording.skipped[:1]:
        assert f"line {d.line}" in bar, bar
