"""Streaming ``perf stat -I <ms> -x, -p PID`` reader.

perf counts through perf_event_open: no ptrace, the target never stops. ``--log-fd 1`` sends
the CSV (normally on stderr) to a pipe we read line by line; perf flushes once per interval.
Lines look like ``     0.200274603,1239,,page-faults,18211701,100.00,68.033,K/sec`` or
``0.200274603,<not supported>,,cycles,0,100.00,,`` (no PMU in this VM).
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from hftmem_tui.errors import AccessDenied, NoSuchProcess, SourceError, ToolFailed, ToolMissing
from hftmem_tui.sources import procfs
from hftmem_tui.sources.process import die_with_parent

SOFTWARE_EVENTS = ("page-faults", "minor-faults", "major-faults", "context-switches",
                   "cpu-migrations", "task-clock")
HARDWARE_EVENTS = ("cycles", "instructions", "cache-misses", "dTLB-load-misses")
DEFAULT_EVENTS = SOFTWARE_EVENTS + HARDWARE_EVENTS
PERF_HINT = "apt-get install linux-perf"

NOT_SUPPORTED = "<not supported>"
NOT_COUNTED = "<not counted>"


@dataclass(frozen=True, slots=True)
class PerfLine:
    """One parsed CSV line. value is None when perf printed <not supported>/<not counted>."""

    timestamp_s: float | None
    event: str
    value: float | None
    unit: str
    supported: bool
    counted: bool
    running_pct: float | None


@dataclass(frozen=True, slots=True)
class PerfSample:
    """One interval. An event in not_counted did not run during it (target idle or exiting):
    read it as 0 for rates. An event in unsupported has no counter here (e.g. no PMU in a VM)."""

    timestamp_s: float
    values: dict[str, float | None]
    unsupported: frozenset[str]
    not_counted: frozenset[str]


def _base_event(name: str) -> str:
    """perf may print "cycles:u" for "cycles" when it restricts counting to user space."""
    return name.split(":", 1)[0]


def parse_perf_csv_line(line: str) -> PerfLine | None:
    """Parse one ``perf stat -x,`` line (with or without the -I timestamp column).

    Returns None for lines that are not counter lines (blank, comments, messages).
    """
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    fields = line.split(",")
    timestamp: float | None = None
    try:
        timestamp = float(fields[0])
        fields = fields[1:]
    except ValueError:
        pass  # no interval column: a one-shot `perf stat -x,`
    if len(fields) < 3 or not fields[2]:
        return None
    raw, unit, event = fields[0], fields[1], fields[2]
    running = None
    if len(fields) > 4 and fields[4]:
        try:
            running = float(fields[4])
        except ValueError:
            running = None
    if raw == NOT_SUPPORTED:
        return PerfLine(timestamp, event, None, unit, False, False, running)
    if raw == NOT_COUNTED:
        return PerfLine(timestamp, event, None, unit, True, False, running)
    try:
        value = float(raw)
    except ValueError:
        return None
    return PerfLine(timestamp, event, value, unit, True, True, running)


def describe_exit(rc: int | None) -> str:
    """How a child ended, from its Popen return code: "was killed by SIGKILL", "exited with status 1"."""
    if rc is None:
        return "stopped answering"
    if rc < 0:
        try:
            return f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"was killed by signal {-rc}"
    return f"exited with status {rc}"


def error_from_stderr(pid: int, text: str, rc: int | None) -> Exception:
    """perf's multi-line complaint (its stderr, exit status ``rc``) as one typed, one-line error:
    NoSuchProcess, AccessDenied (with perf_event_paranoid) or ToolFailed, returned, not raised."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and ln.strip() != "Error:"]
    first = lines[0] if lines else f"perf {describe_exit(rc)}"
    low = text.lower()
    if "problems finding threads" in low or "no such process" in low:
        return NoSuchProcess(pid, "perf could not find its threads")
    if "permission" in low or "paranoid" in low or "access to performance monitoring" in low:
        level = procfs.read_system("sys/kernel/perf_event_paranoid") or "?"
        return AccessDenied(pid, "perf counters", f"{first} (perf_event_paranoid={level})")
    return ToolFailed(f"perf stat failed: {first}")


def _perf_binary() -> str:
    path = shutil.which("perf")
    if path is None:
        raise ToolMissing("perf", hint=PERF_HINT)
    return path


class PerfStream:
    """``perf stat -I`` on one pid, as an iterator of PerfSample. Use as a context manager.

    samples() raises ToolMissing, AccessDenied, NoSuchProcess, or ToolFailed (perf silent for
    ``stall_timeout_s``); it ends cleanly when the target exits.
    """

    def __init__(self, pid: int, interval_ms: int = 1000, events=DEFAULT_EVENTS,
                 stall_timeout_s: float | None = None, die_with_parent: bool = False) -> None:
        if interval_ms < 10:
            raise ValueError("perf stat -I needs at least 10 ms")
        self.pid = pid
        self.interval_ms = interval_ms
        self.events = tuple(events)
        self.stall_timeout_s = stall_timeout_s or max(5.0, 5 * interval_ms / 1000)
        # A recorder killed with SIGKILL must not leave perf counting forever: the kernel kills
        # perf when the thread that called start() dies, so only opt in from a long-lived thread.
        self.die_with_parent = die_with_parent
        self._proc: subprocess.Popen | None = None
        self._closed = False
        self._buf = b""
        self.command = [_perf_binary(), "stat", "-I", str(interval_ms), "-x,", "--log-fd", "1",
                        "-p", str(pid), "-e", ",".join(self.events)]

    def start(self) -> None:
        if self._proc is not None or self._closed:
            return
        env = dict(os.environ, LC_ALL="C")  # no locale digit grouping in the CSV
        self._proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                      preexec_fn=die_with_parent if self.die_with_parent else None)
        os.set_blocking(self._proc.stdout.fileno(), False)

    def __enter__(self) -> PerfStream:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _lines(self) -> Iterator[str]:
        """Lines from perf's stdout; each wait is bounded by stall_timeout_s."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            while True:
                nl = self._buf.find(b"\n")
                if nl >= 0:
                    line, self._buf = self._buf[:nl], self._buf[nl + 1:]
                    yield line.decode("utf-8", "replace")
                    continue
                if not sel.select(self.stall_timeout_s):
                    raise ToolFailed(f"perf stat printed nothing for {self.stall_timeout_s:.0f} s")
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    if self._closed:  # close() from another thread closed the pipe
                        return
                    raise
                if not chunk:
                    if self._buf:
                        yield self._buf.decode("utf-8", "replace")
                        self._buf = b""
                    return
                self._buf += chunk
        finally:
            sel.close()

    def samples(self) -> Iterator[PerfSample]:
        """Yield one PerfSample per interval until the target exits or close() is called."""
        self.start()
        per_interval = len(self.events)
        pending: list[PerfLine] = []
        produced = 0
        for text in self._lines():
            parsed = parse_perf_csv_line(text)
            if parsed is None or parsed.timestamp_s is None:
                continue
            if pending and pending[0].timestamp_s != parsed.timestamp_s:
                done, pending = pending, []
            else:
                pending.append(parsed)
                if len(pending) < per_interval:
                    continue
                done, pending, parsed = pending, [], None
            sample = self._sample(done)
            if self._target_gone(sample):
                self.close()
                break
            produced += 1
            yield sample
            if parsed is not None:
                pending.append(parsed)
        else:
            if pending:
                produced += 1
                yield self._sample(pending)
        rc = self._wait_exit()
        if produced == 0 and not self._closed:
            raise error_from_stderr(self.pid, self._stderr(), rc)

    def _target_gone(self, sample: PerfSample) -> bool:
        """perf keeps printing <not counted> for a zombie target: end the stream there."""
        counted = set(sample.values) - sample.unsupported - sample.not_counted
        if counted:
            return False
        try:
            state = procfs.read_stat(self.pid).state
        except (SourceError, ValueError, IndexError):
            return True  # gone, or a stat line too short to hold a state
        return state in ("Z", "X")

    def _sample(self, lines: list[PerfLine]) -> PerfSample:
        names = {_base_event(e): e for e in self.events}
        values: dict[str, float | None] = {}
        unsupported, not_counted = set(), set()
        for ln in lines:
            event = names.get(_base_event(ln.event), ln.event)
            values[event] = ln.value
            if not ln.supported:
                unsupported.add(event)
            elif not ln.counted:
                not_counted.add(event)
        return PerfSample(lines[0].timestamp_s or 0.0, values, frozenset(unsupported),
                          frozenset(not_counted))

    @property
    def returncode(self) -> int | None:
        """perf's exit status once it has exited (negative: killed by that signal), else None."""
        return None if self._proc is None else self._proc.poll()

    def _wait_exit(self, timeout: float = 2.0) -> int | None:
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def _stderr(self) -> str:
        if self._proc is None or self._proc.stderr is None or self._proc.poll() is None:
            return ""
        try:
            return self._proc.stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def close(self, timeout: float = 2.0) -> None:
        """Stop perf: SIGINT (it prints its last interval and exits), SIGKILL after timeout."""
        self._closed = True
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
            except ProcessLookupError:
                pass
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


_SUPPORT_CACHE: dict[tuple[str, ...], frozenset[str]] = {}


def probe_events(pid: int, events=DEFAULT_EVENTS, duration_ms: int = 100,
                 timeout_s: float = 10.0) -> frozenset[str]:
    """The subset of events this machine can count, from one short ``perf stat`` on pid.

    Cached per event list: support depends on the machine's PMU, not on the target.
    Raises ToolMissing, AccessDenied, NoSuchProcess, ToolFailed.
    """
    key = tuple(events)
    if key in _SUPPORT_CACHE:
        return _SUPPORT_CACHE[key]
    cmd = [_perf_binary(), "stat", "-x,", "--log-fd", "1", "--timeout", str(duration_ms),
           "-p", str(pid), "-e", ",".join(key)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                           stdin=subprocess.DEVNULL, env=dict(os.environ, LC_ALL="C"))
    except subprocess.TimeoutExpired as e:
        raise ToolFailed(f"perf stat did not finish within {timeout_s:.0f} s") from e
    parsed = [p for p in map(parse_perf_csv_line, r.stdout.splitlines()) if p is not None]
    if not parsed:
        raise error_from_stderr(pid, r.stderr, r.returncode)
    names = {_base_event(e): e for e in key}
    supported = frozenset(names.get(_base_event(p.event), p.event) for p in parsed if p.supported)
    _SUPPORT_CACHE[key] = supported
    return supported

