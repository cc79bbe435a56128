"""How hftmem's own process ends: SIGTERM and SIGHUP (an SSH drop) unwind like an exception.

Every long-running command and the TUI run inside :func:`unwind_on_hangup`, so their `finally`
blocks (disarm watchpoints, detach gdb, remove probes, stop a child engine) run on those signals
exactly as on Ctrl-C or a normal end.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

__all__ = ["unwind_on_hangup"]


@contextmanager
def unwind_on_hangup():
    """SIGTERM/SIGHUP raise SystemExit(128 + signum) inside the block; handlers restored after."""
    def _exit_on(signum, _frame):
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, _exit_on) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
