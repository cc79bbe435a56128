"""Evidence that an observer never stopped or traced the engine, robust to a loaded machine.

Only real stops count: a thread of the engine in state ``t`` (ptrace stop) or ``T`` (SIGSTOP),
or a ``TracerPid`` other than 0, read from /proc/PID/task/TID/status of every thread. Time a
thread spends waiting for a CPU is neither, so other work on the machine can never fail a test:
no wall-clock gap, loop gap or scheduler statistic is judged (schedstat's run-queue wait is only
booked when the thread gets a CPU back, so a window cut in mid-wait once read 251 ms "stopped").

The poller is slowed by load too: it then polls less often. So it is judged by polls, never by
time: ``__exit__`` waits for ``min_polls`` polls, the last one begun after the watched code ended.
A gdb attach (450+ ms stopped and traced) is seen by dozens of polls even on a loaded VM.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

STOPPED_STATES = frozenset({"t", "T"})  # tracing stop, stopped by a signal
EXIT_TIMEOUT_S = 60.0  # only a safety net for a poller that cannot get a CPU at all; never a judgement


def read_thread_states(pid: int) -> dict[int, tuple[str, int]] | None:
    """{tid: (state letter, TracerPid)} for every thread of ``pid``; None once the process is gone.

    Read from /proc directly (tests judge the product against the kernel, not through it). A thread
    that exits between the listing and its read is left out. Raises nothing for a vanished target.
    """
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return None
    out = {}
    for tid in tids:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        out[int(tid)] = (fields["State"].split()[0], int(fields["TracerPid"]))
    return out


class EngineStopMonitor:
    """Context manager: polls State and TracerPid of every engine thread while the body runs.

    ``states`` / ``tracers``: every state letter and TracerPid seen; ``stopped_ms``: time seen
    stopped, summed over stops (each from its first to its last stopped poll: a lower bound that
    a slow poller can shorten but never lengthen); ``worst_window_ms``: the longest single stop.
    ``__exit__`` raises AssertionError if the poller could not make its polls, or failed.
    """

    def __init__(self, pid: int, poll_s: float = 0.002, min_polls: int = 10) -> None:
        self.pid = pid
        self.poll_s = poll_s
        self.min_polls = min_polls
        self.states: set[str] = set()
        self.tracers: set[int] = set()
        self.polls = 0
        self.gone = False  # the engine exited while watched (not a stop; callers check it is running)
        self.stopped_ms = self.worst_window_ms = self.wall_ms = 0.0
        self.longest_gap_ms = 0.0  # between two polls: shows the load, judges nothing
        self._stop_began: int | None = None  # first and last poll of the stop in progress (monotonic ns)
        self._stop_last = 0
        self._closing_at: int | None = None  # set by __exit__: the body ended here
        self._error: BaseException | None = None
        self._poller = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            last = time.monotonic_ns()
            while True:
                began = time.monotonic_ns()
                self.longest_gap_ms = max(self.longest_gap_ms, (began - last) / 1e6)
                last = began
                if not self._poll(began):
                    return
                closing = self._closing_at
                if closing is not None and began >= closing and self.polls >= self.min_polls:
                    return
                time.sleep(self.poll_s)
        except BaseException as e:  # noqa: BLE001 - handed to __exit__, which raises it in the test
            self._error = e

    def _poll(self, now: int) -> bool:
        """One look at every thread; False once the engine is gone."""
        threads = read_thread_states(self.pid)
        if threads is None:
            self.gone = True
            return False
        self.polls += 1
        stopped = False
        for state, tracer in threads.values():
            self.states.add(state)
            self.tracers.add(tracer)
            stopped |= state in STOPPED_STATES
        if stopped:
            self._stop_began = now if self._stop_began is None else self._stop_began
            self._stop_last = now
        else:
            self._end_stop()
        return True

    def _end_stop(self) -> None:
        # The stop ended somewhere after its last stopped poll: book it only up to that poll.
        if self._stop_began is not None:
            length = (self._stop_last - self._stop_began) / 1e6
            self.stopped_ms += length
            self.worst_window_ms = max(self.worst_window_ms, length)
            self._stop_began = None

    def __enter__(self) -> EngineStopMonitor:
        self._t0 = time.monotonic_ns()
        self._poller.start()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self._closing_at = time.monotonic_ns()
        if exc_type is not None:  # the body failed: stop at once, its error is the one to see
            self.min_polls = 0
        self._poller.join(timeout=EXIT_TIMEOUT_S)
        self.wall_ms = (time.monotonic_ns() - self._t0) / 1e6
        if not self._poller.is_alive():
            self._end_stop()  # a stop still seen at the last poll
        if exc_type is not None:
            return
        if self._error is not None:
            raise AssertionError(f"the stop monitor's poller failed: {self._error!r}") from self._error
        if self._poller.is_alive():
            raise AssertionError(f"the stop monitor made only {self.polls} of {self.min_polls} polls "
                                 f"in {EXIT_TIMEOUT_S:g} s after the watched code ended")

    def __str__(self) -> str:
        return (f"engine {self.pid} over {self.wall_ms:.0f} ms: stopped {self.stopped_ms:.0f} ms "
                f"(longest stop {self.worst_window_ms:.0f} ms); states {sorted(self.states)}, "
                f"tracers {sorted(self.tracers)} ({self.polls} polls, longest gap "
                f"{self.longest_gap_ms:.0f} ms{', engine exited' if self.gone else ''})")

    @property
    def disturbed(self) -> bool:
        """Whether any thread was seen traced or stopped (never judged by time)."""
        return self.tracers - {0} != set() or bool(self.states & STOPPED_STATES)
