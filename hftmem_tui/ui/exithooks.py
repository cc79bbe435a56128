"""Exit hooks run in parallel, each with a bound: quitting never waits for the slowest in turn.

Removing the allocation probes and detaching gdb do not depend on each other; a hook that hangs
is abandoned (a daemon thread) after its wait and named in the log, the others have run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def run_logged(fn: Callable[[], None], log: Callable[[str], None]) -> None:
    """Run ``fn``; an exception is logged, never raised (the next hook, a detach, must still run)."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - see the docstring
        log(f"exit hook failed: {e}")


def run_parallel(hooks: list[tuple[Callable[[], None], float]], log: Callable[[str], None]) -> list[str]:
    """Start every ``(hook, wait_s)`` in its own daemon thread, wait for each at most its ``wait_s``
    (counted from the start), and return the names of those still running (also logged)."""
    now = time.monotonic()
    threads = []
    for fn, wait_s in hooks:
        t = threading.Thread(target=run_logged, args=(fn, log), daemon=True,
                             name=f"hftmem-exit:{getattr(fn, '__qualname__', fn)}")
        t.start()
        threads.append((t, now + wait_s))
    for t, deadline in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    late = [t.name for t, _ in threads if t.is_alive()]
    for name in late:
        log(f"exit hook still running at its time limit, abandoned: {name}")
    return late
