"""Evidence that an observer never stopped or traced the engine, robust to a loaded machine.

The engine's strategy thread spins: it is always either on a CPU or waiting for one. Its
/proc schedstat gives both times (run, run-queue wait), so over a period

    stopped = wall time - run time - run-queue wait

is the time it could not run at all: ptrace stops, SIGSTOP, blocking on a lock. CPU
contention from other work only moves time from "run" to "wait", never into "stopped"
(1-3 ms of bookkeeping noise on the loaded 2-vCPU VM, against 450-1100 ms for one
`gdb -batch -p`). Polling State and TracerPid every 2 ms meanwhile catches the attach itself.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

STRATEGY_THREAD = "hftmem-strat"
STOPPED_BOUND_MS = 50.0  # in any one window; noise measured: 1-3 ms under heavy load; one gdb attach: 450+ ms
WINDOW_S = 0.25  # a ptrace stop is one contiguous stretch; short blocks on the target's mmap lock
# while smaps is read (a few ms each, longer when the reader is preempted on a loaded VM) are spread out


def _thread(pid: int, comm: str, timeout: float = 5.0) -> int:
    """The thread named ``comm`` (an engine names its threads just after start: wait for it)."""
    deadline = time.monotonic() + timeout
    while True:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                if Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip() == comm:
                    return int(tid)
            except OSError:
                continue
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} has no thread named {comm}")
        time.sleep(0.02)


class EngineStopMonitor:
    """Context manager: measures the strategy thread's stopped time and polls its State/TracerPid."""

    def __init__(self, pid: int, poll_s: float = 0.002) -> None:
        self.pid = pid
        self.tid = _thread(pid, STRATEGY_THREAD)
        self.poll_s = poll_s
        self.states: set[str] = set()
        self.tracers: set[int] = set()
        self.polls = 0
        self.worst_window_ms = 0.0  # the most stopped time in one WINDOW_S window
        self.stopped_ms = self.wall_ms = self.run_ms = self.wait_ms = 0.0
        self._done = threading.Event()
        self._poller = threading.Thread(target=self._poll, daemon=True)

    def _schedstat(self) -> tuple[int, int, int]:
        run, wait, _ = map(int, Path(f"/proc/{self.pid}/task/{self.tid}/schedstat").read_text().split())
        return time.monotonic_ns(), run, wait

    def _poll(self) -> None:
        path = f"/proc/{self.pid}/task/{self.tid}/status"
        self._last = self._start
        while not self._done.is_set():
            now = self._schedstat()
            if now[0] - self._last[0] >= WINDOW_S * 1e9:
                self._window(self._last, now)
                self._last = now
            fields = dict(line.split(":", 1) for line in Path(path).read_text().splitlines() if ":" in line)
            self.states.add(fields["State"].split()[0])
            self.tracers.add(int(fields["TracerPid"]))
            self.polls += 1
            time.sleep(self.poll_s)

    def _window(self, a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
        stopped = ((b[0] - a[0]) - (b[1] - a[1]) - (b[2] - a[2])) / 1e6
        self.worst_window_ms = max(self.worst_window_ms, stopped)

    def __enter__(self) -> EngineStopMonitor:
        self._start = self._schedstat()
        self._poller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._poller.join(timeout=5)
        end = self._schedstat()
        self._window(getattr(self, "_last", self._start), end)  # the last, partial window
        self.wall_ms = (end[0] - self._start[0]) / 1e6
        self.run_ms = (end[1] - self._start[1]) / 1e6
        self.wait_ms = (end[2] - self._start[2]) / 1e6
        self.stopped_ms = self.wall_ms - self.run_ms - self.wait_ms

    def __str__(self) -> str:
        return (f"strategy thread over {self.wall_ms:.0f} ms: ran {self.run_ms:.0f}, waited for a CPU "
                f"{self.wait_ms:.0f}, stopped {self.stopped_ms:.0f} ms (worst {WINDOW_S:g} s window "
                f"{self.worst_window_ms:.0f} ms); states {sorted(self.states)}, "
                f"tracers {sorted(self.tracers)} ({self.polls} polls)")

    @property
    def disturbed(self) -> bool:
        return (self.worst_window_ms >= STOPPED_BOUND_MS or self.tracers != {0}
                or bool(self.states & {"t", "T"}))
