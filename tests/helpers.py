"""What tests share: waiting on a condition (never a fixed sleep), the text a widget shows, ports,
the CLI in the background, metrics scrapes, the live App, the watch driver, tmux, tour samples.

Test modules import from here (and from conftest's fixtures), never from each other.
"""

from __future__ import annotations

import dataclasses
import queue
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, proc_status


def wait_for(cond: Callable[[], object], timeout: float = 10.0, what: str | Callable[[], str] = "condition",
             step: float = 0.05):
    """Poll ``cond`` until it returns something truthy (returned); AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
        time.sleep(step)


async def wait_for_pilot(pilot, cond: Callable[[], object], timeout: float = 10.0,
                         what: str | Callable[[], str] = "condition", step: float = 0.05) -> None:
    """As wait_for, inside a Textual pilot test: the app keeps running between polls."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
        await pilot.pause(step)


def text_of(widget) -> str:
    """What a Static-like widget shows, as plain text (Rich renderables printed at a wide width)."""
    from rich.console import Console

    content = widget.content if hasattr(widget, "content") else widget.render()
    if isinstance(content, str):
        return content
    with open("/dev/null", "w") as sink:
        console = Console(width=250, record=True, file=sink)
        console.print(content)
        return console.export_text()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the real CLI in the background, and what it leaves behind

def spawn_cli(*args: str, **kw) -> subprocess.Popen:
    """Start the real `hftmem` command in the background (stdout/stderr captured as text)."""
    return subprocess.Popen([sys.executable, "-m", "hftmem_tui.cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def wait_lines(path: Path, n: int, timeout: float = 20.0) -> None:
    """Wait until ``path`` has at least ``n`` lines (a recording's header plus samples); AssertionError if not."""
    wait_for(lambda: path.exists() and path.read_bytes().count(b"\n") >= n, timeout, f"{n} lines in {path}")


def children(pid: int) -> list[int]:
    """The child pids of ``pid`` (empty once it is gone)."""
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def gone(pid: int) -> bool:
    """``pid`` has exited (a zombie counts: its parent has not reaped it yet)."""
    try:
        return proc_status(pid).get("State", "").startswith(("Z", "X"))
    except OSError:
        return True


# --- `hftmem export`: one scrape, parsed

def scrape_metrics(port: int, timeout: float = 20.0) -> dict:
    """One scrape of 127.0.0.1:``port``, parsed by prometheus_client; waits while the exporter starts
    (not listening, or no sample yet). Raises the last OSError, or AssertionError, after ``timeout`` s."""
    from prometheus_client.parser import text_string_to_metric_families

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                text = resp.read().decode()
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            if "hftmem_target_up" in fams:
                return fams
        except OSError:
            if time.monotonic() > deadline:
                raise
        assert time.monotonic() < deadline, "no hftmem_target_up in the scrape"
        time.sleep(0.1)


def metric_value(families: dict, name: str, **labels) -> float:
    """The value of metric ``name`` (or ``name``_total) with these labels; KeyError if there is none."""
    for s in families[name].samples:
        if s.name in (name, name + "_total") and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError(f"{name} {labels}")


# --- the App on a live engine

def live_app(pid: int, interval_s: float = 0.2, smaps_every: int = 2, perf: bool = False, **kw):
    """HftmemApp on a LiveSampler of ``pid`` and the LiveServices of ``pid``, redrawn every ``interval_s``."""
    from hftmem_tui.feeds.sampler import LiveSampler
    from hftmem_tui.services import LiveServices
    from hftmem_tui.ui.app import HftmemApp

    sampler = LiveSampler(pid, interval_s=interval_s, smaps_every=smaps_every, perf=perf)
    return HftmemApp(sampler, services=LiveServices(sampler.start()), refresh_s=interval_s, **kw)


# --- the engine's code and memory, found by name (never a hard-coded number)

ENGINE_CPP = ROOT / "native" / "engine" / "engine.cpp"


def source_line(marker: str) -> int:
    """Line number in engine.cpp of the line containing ``marker``; AssertionError if none does."""
    for i, line in enumerate(ENGINE_CPP.read_text().splitlines(), 1):
        if marker in line:
            return i
    raise AssertionError(f"{marker!r} not in {ENGINE_CPP}")


def slot_address(pid: int, field_offset: int) -> int:
    """Runtime address of a field of the order pool's first slot (the pool hands slot 0 out every ~65 msgs)."""
    from hftmem_tui.sources.symbols import SymbolTable

    with SymbolTable.for_pid(pid) as t:
        return t.runtime_address(t.resolve_expr("hftmem_order_pool.slots_[0]"), pid) + field_offset


def engine_counter(pid: int, expr: str = "hftmem_engine_stats.ticks") -> int:
    """A 64-bit counter of the running engine, read from its memory (process_vm_readv: no stop)."""
    from hftmem_tui.sources.memory import read_memory
    from hftmem_tui.sources.watchpoint import resolve_target

    spec = resolve_target(pid, expr)
    return int.from_bytes(read_memory(pid, spec.address, 8), "little")


def wait_engine_advances(pid: int, expr: str = "hftmem_engine_stats.ticks", by: int = 1,
                         timeout: float = 10.0) -> int:
    """Wait until the engine's counter ``expr`` has gone up by ``by`` from now (the engine ran that far);
    returns the new value. AssertionError after ``timeout`` s."""
    start = engine_counter(pid, expr)
    return wait_for(lambda: (v := engine_counter(pid, expr)) >= start + by and v, timeout,
                    f"{expr} of engine {pid} to go up by {by} from {start}")


# --- perf breakpoints, and the watch controller driven the way the pane drives it

def _perf_breakpoints_allowed() -> bool:
    from hftmem_tui.errors import AccessDenied
    from hftmem_tui.sources.perf.breakpoints import check_perf_access

    try:
        check_perf_access()
        return True
    except AccessDenied:
        return False


PERF_BREAKPOINTS = _perf_breakpoints_allowed()
needs_perf_breakpoints = pytest.mark.skipif(not PERF_BREAKPOINTS, reason="perf breakpoints not allowed for this user")


class WatchDriver:
    """What the pane does: events posted from the controller's threads, handed back on this thread."""

    def __init__(self, pid: int) -> None:
        from hftmem_tui.watch.controller import WatchController

        self.events: queue.Queue = queue.Queue()
        self.c = WatchController(pid, self.events.put)
        self.c.check_perf()

    def next(self, kind, timeout: float = 10.0):
        """The next event of type ``kind`` (others dropped); queue.Empty after ``timeout`` s of silence."""
        while True:
            ev = self.events.get(timeout=timeout)
            if isinstance(ev, kind):
                return ev


# --- a real terminal: hftmem in a private tmux server

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")


class Tmux:
    """``command`` running in a detached tmux session of its own server; keys sent, screen read."""

    def __init__(self, command: str, width: int = 120, height: int = 40) -> None:
        self.name = f"hftmem-test-{uuid.uuid4().hex[:8]}"
        # A private server (-L) with no config (-f /dev/null): other tmux users cannot resize it.
        self.base = ["tmux", "-L", self.name, "-f", "/dev/null"]
        # COLUMNS/LINES (pytest sets them) would override the real terminal size in Textual.
        # The shell stays after hftmem exits, so the test can read its exit status on screen.
        subprocess.run([*self.base, "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                        f"cd {ROOT} && env -u COLUMNS -u LINES {command}; echo EXITED $?; sleep 600"], check=True,
                       stdin=subprocess.DEVNULL)
        subprocess.run([*self.base, "resize-window", "-t", self.name, "-x", str(width), "-y", str(height)],
                       check=True)

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-t", self.name], capture_output=True,
                              text=True, check=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, *needles: str, timeout: float) -> str:
        """The screen once every needle is on it; AssertionError (with the screen) after ``timeout`` s."""
        last = [""]

        def shown() -> str | None:
            last[0] = self.screen()
            return last[0] if all(n in last[0] for n in needles) else None

        return wait_for(shown, timeout, lambda: f"{needles} on screen; it shows:\n{last[0]}", step=0.1)

    def hftmem_pid(self) -> int:
        shell = subprocess.run([*self.base, "display", "-p", "-t", self.name, "#{pane_pid}"], capture_output=True,
                               text=True, check=True).stdout.strip()
        kids = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True).stdout.split()
        return int(kids[0])

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


def attach_command(pid: int, *extra: str) -> str:
    """The shell command line of `hftmem attach PID ...` with this interpreter."""
    return f"{sys.executable} -m hftmem_tui.cli attach {pid} {' '.join(extra)}"


# --- tour samples built from counters, no engine

MIB = 1 << 20


def engine_stats(scenarios=(), **values):
    """An EngineStats with every counter 0 except ``values``; ``scenarios`` sets the bits by name."""
    from hftmem_tui.model.decode import EngineStats
    from hftmem_tui.sources.engine import SCENARIOS

    base = {f.name: 0 for f in dataclasses.fields(EngineStats)}
    base.update(magic=b"HFTMEM01", version=1, pool_capacity=4096, ring_capacity=4096,
                max_gap_hist=(0,) * 64, p999_gap_hist=(0,) * 64)
    base["scenarios"] = sum(1 << SCENARIOS.index(s) for s in scenarios)
    base.update(values)
    return EngineStats(**base)


def tour_sample(t, rss_mib=100.0, minflt=1000, scenarios=(), rings=(), mappings=None, **values):
    """A TourSample at time ``t`` with this RSS and fault count, the engine counters as engine_stats."""
    from hftmem_tui.demo.chapters import TourSample

    return TourSample(t, int(rss_mib * 1024), minflt, engine_stats(scenarios, **values), tuple(rings), mappings)


# ------------------------------------------------------------------ samples from captured /proc text (no process)

def _captured(name: str) -> str:
    from tests.conftest import FIXTURES

    return (FIXTURES / "proc" / name).read_text()


def _fixture_samples():
    from hftmem_tui.feeds.sample import TargetInfo
    from hftmem_tui.sources import procfs

    status = procfs.parse_status(_captured("sleep_status"))
    stat = procfs.parse_stat(_captured("sleep_stat"))
    info = TargetInfo(status.tgid, status.name, "/usr/bin/sleep", ("sleep", "1000"), "root", 1700000000.0, "box1",
                      procfs.SchedInfo("SCHED_OTHER", 0, 0, frozenset({0, 1})), engine=False,
                      start_ticks=stat.starttime_ticks)
    return (status, stat, procfs.parse_smaps_rollup(_captured("sleep_smaps_rollup")),
            procfs.parse_smaps(_captured("sleep_smaps")), info)


STATUS, STAT, ROLLUP, MAPS, INFO = _fixture_samples()


def recorded_sample(seq, *, rss_kb=None, rollup=True, mappings=None):
    """Sample ``seq`` of a `sleep` process, from captured /proc text; RSS, rollup and mappings settable."""
    import dataclasses

    from hftmem_tui.feeds.sample import Sample
    from hftmem_tui.sources.process import ProcessInfo, ThreadTimes

    status = dataclasses.replace(STATUS, vm_rss_kb=rss_kb) if rss_kb is not None else STATUS
    proc = ProcessInfo(INFO.pid, INFO.comm, INFO.cmdline, INFO.exe, INFO.username, INFO.create_time, 0.5,
                       status.vm_rss_kb * 1024, 1 << 20, None, None, None, 1, (ThreadTimes(STATUS.tgid, 0.01, 0.0),), 0, 3)
    return Sample(INFO, seq, 1700000100.0 + seq, status, STAT, proc, ROLLUP if rollup else None, mappings,
                  None, None, (), {"status": 0.1})


def recording_header() -> dict:
    """The header of a recording of :data:`INFO` (1 s interval, every mapping every 3rd sample)."""
    from hftmem_tui.feeds.recording_writer import make_header

    return make_header(INFO, interval_s=1.0, smaps_every=3, rollup_every=1, budget=0.01,
                       perf_interval_ms=None, recorded_at=1700000100.0)


def write_recording(path, samples, *, end="duration reached"):
    """Write ``samples`` as a recording at ``path`` (ended with ``end``, or cut off when None)."""
    from hftmem_tui.feeds.recording_writer import (
        RecordingWriter,
        SampleEncoder,
        encode_line,
    )

    w = RecordingWriter(str(path))
    w.open(recording_header())
    enc = SampleEncoder()
    for s in samples:
        w.write_sample(encode_line(enc.encode(s, first_in_file=w.samples_in_file == 0)))
    if end:
        w.end(end)
    else:
        w.close()
    return path


# ------------------------------------------------------------------ machine facts tests depend on

def _uprobes_writable() -> bool:
    import os

    from hftmem_tui.errors import SourceError
    from hftmem_tui.sources.perf.uprobes import find_tracefs

    try:
        return os.access(os.path.join(find_tracefs(), "uprobe_events"), os.W_OK)
    except SourceError:
        return False


def uprobes_mark():
    """The skip mark of tests that define uprobes (root and a mounted tracefs: the suite mounts it)."""
    import pytest

    return pytest.mark.skipif(not _uprobes_writable(), reason="uprobes need root and a mounted tracefs")


SNAPSHOT_TEXTUAL = "8.2.8"  # the SVG snapshots were drawn with this Textual (pinned in pyproject.toml)


def snapshot_textual_mark():
    """Skip snapshot tests on another Textual: it draws some cells differently (memray does the same)."""
    from importlib.metadata import version

    import pytest

    return pytest.mark.skipif(version("textual") != SNAPSHOT_TEXTUAL,
                              reason=f"snapshots are from textual {SNAPSHOT_TEXTUAL}, this is {version('textual')}")
