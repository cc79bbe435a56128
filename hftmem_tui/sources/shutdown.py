"""How hftmem's own process ends, in one place: signals, fixed-rate loops, the exit watchdog.

Two ways to end on SIGTERM and SIGHUP (an SSH drop):

* :func:`unwind_on_hangup`: the signal raises ``SystemExit(128 + signum)`` inside the block, so
  every ``finally`` (disarm watchpoints, detach gdb, remove probes, stop a child engine) runs
  exactly as on Ctrl-C or a normal end. For commands whose work is one straight line.
* :func:`stop_on_signals`: the signal only sets a :class:`StopFlag`; a loop that checks it ends at
  its next beat and finishes its output (the recording's end line, the exporter's last scrape).

:func:`paced` is the loop: beats at fixed times from the start (no drift), a slow beat skips the
beats it missed instead of bursting, and a stop ends the wait at once. :func:`exit_watchdog`
bounds a shutdown that may hang (a terminal gone, a thread stuck writing to it).

Handlers go in only from the main thread (Python allows no other); elsewhere every helper here
still works, it just installs nothing.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

__all__ = ["HANGUP_SIGNALS", "STOP_SIGNALS", "SignalHandlers", "StopFlag", "exit_watchdog", "paced",
           "stop_on_signals", "unwind_on_hangup"]

HANGUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # Ctrl-C stays KeyboardInterrupt
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class SignalHandlers:
    """``handler`` installed for ``signals`` until :meth:`restore` (or the end of a ``with``).

    From a thread other than the main one nothing is installed (Python refuses it there); a
    signal that cannot be caught on this platform is skipped.
    """

    def __init__(self, handler: Callable, signals: Iterable[int] = HANGUP_SIGNALS) -> None:
        self._previous: dict[int, object] = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in signals:
            try:
                self._previous[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):
                pass

    @property
    def installed(self) -> tuple[int, ...]:
        return tuple(self._previous)

    def restore(self) -> None:
        """Put the replaced handlers back; idempotent."""
        while self._previous:
            sig, old = self._previous.popitem()
            try:
                signal.signal(sig, old)  # type: ignore[arg-type]
            except (ValueError, OSError, TypeError):  # TypeError: None, a handler set from C
                pass

    def __enter__(self) -> SignalHandlers:
        return self

    def __exit__(self, *_exc) -> None:
        self.restore()


@contextmanager
def unwind_on_hangup(signals: Iterable[int] = HANGUP_SIGNALS) -> Iterator[None]:
    """SIGTERM/SIGHUP raise SystemExit(128 + signum) inside the block; handlers restored after."""

    def _exit_on(signum, _frame):
        raise SystemExit(128 + signum)

    with SignalHandlers(_exit_on, signals):
        yield


class StopFlag(threading.Event):
    """An Event that remembers which signal set it (None: set by code, or not set)."""

    def __init__(self) -> None:
        super().__init__()
        self.signum: int | None = None

    def stop(self, signum: int | None = None) -> None:
        """Set the flag; the first signal to set it is the one remembered."""
        if signum is not None and self.signum is None:
            self.signum = signum
        self.set()

    @property
    def reason(self) -> str:
        """"stopped by SIGTERM" (the signal's name), or "stopped" when code set it."""
        return f"stopped by {signal.Signals(self.signum).name}" if self.signum else "stopped"


@contextmanager
def stop_on_signals(stop: threading.Event | None = None,
                    signals: Iterable[int] = STOP_SIGNALS) -> Iterator[threading.Event]:
    """Yield ``stop`` (a new StopFlag if None), set by any of ``signals`` inside the block.

    A StopFlag also records the signal (``.signum``, ``.reason``); a plain Event is only set.
    Handlers are restored when the block ends.
    """
    flag = stop if stop is not None else StopFlag()

    def _stop(signum, _frame):  # only sets a flag: safe whatever the main thread was doing
        if isinstance(flag, StopFlag):
            flag.stop(signum)
        else:
            flag.set()

    with SignalHandlers(_stop, signals):
        yield flag


def paced(interval_s: float, stop: threading.Event | None = None, *, until: float | None = None,
          clock: Callable[[], float] = time.monotonic) -> Iterator[int]:
    """Yield beat numbers 0, 1, 2... at ``start + n * interval_s`` (start: the first ``next()``).

    The first beat is at once. A beat that comes late (the caller's work took longer than the
    interval) makes the next one the next on the grid, skipping the missed ones, so the rate
    never bursts nor drifts. Ends when ``stop`` is set (checked before each beat and during the
    wait, which it cuts short) or when the next beat would fall after ``until`` (a ``clock()``
    time): then it ends at once, without waiting. Raises ValueError for a non-positive interval.
    With no ``stop`` the wait is ``time.sleep``; a signal handler that raises (unwind_on_hangup)
    interrupts either wait.
    """
    if not interval_s > 0:
        raise ValueError(f"interval must be positive, got {interval_s}")
    start = clock()
    beat = 0
    while stop is None or not stop.is_set():
        yield beat
        beat += 1
        now = clock()
        if start + beat * interval_s < now:  # late: the next beat on the grid, not a burst
            beat = int((now - start) / interval_s) + 1
        next_at = start + beat * interval_s
        if until is not None and next_at > until:
            return
        if stop is None:
            time.sleep(max(0.0, next_at - now))
        elif stop.wait(max(0.0, next_at - now)):
            return


def exit_watchdog(seconds: float, code: int, before: Callable[[], None] | None = None) -> threading.Timer:
    """End the process with ``code`` if it is still alive ``seconds`` from now.

    ``before`` runs first (in the timer's thread; an exception from it is ignored so the exit
    still happens). ``os._exit`` skips atexit and ``finally``: arm it only once the normal
    shutdown has been asked for. Returns the started daemon timer (``cancel()`` disarms it).
    """

    def expire() -> None:
        try:
            if before is not None:
                before()
        finally:
            os._exit(code)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer
