"""`hftmem watch`: one hardware watchpoint, headless, through perf (default) or gdb.

perf (sources/perf/breakpoints.py) never stops the engine and never ptraces it; gdb
(sources/gdb/session.py) stops the writing thread at each hit and attaches with ptrace, so it is
used on request (``--via gdb``) or when perf events are not permitted (said in one stderr line).
The user's text goes through the expression guard before anything else: ``'x = 1'`` is refused
before a symbol is looked up or a debugger started.
"""

from __future__ import annotations

import sys
import time

from hftmem_tui.errors import SourceError
from hftmem_tui.feeds.sampler import ProcessIdentity, ProcessReplaced
from hftmem_tui.sources.perf.breakpoints import PerfWatch
from hftmem_tui.sources.shutdown import unwind_on_hangup
from hftmem_tui.watch.controller import prepare_watch
from hftmem_tui.watch.format import format_hit, ms
from hftmem_tui.textsafe import visible

__all__ = ["run_watch"]


def run_watch(pid: int, target: str, *, access: str = "write", count: int | None = None,
              timeout: float | None = None, via: str | None = None, max_rate: float | None = None,
              out=None, err=None) -> int:
    """Watch ``target`` in ``pid``, print one block per hit, then disarm/detach and say what it cost.

    Raises what the sources raise (SourceError subclasses): the CLI prints them as one line.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    backend, note, spec = prepare_watch(pid, target, access, via)  # refusals first, before any lookup or attach
    if note:
        err.write(f"hftmem: {visible(note)}\n")
        err.flush()
    identity = ProcessIdentity.of(pid)  # (pid, start time): the watch is on this process only
    with unwind_on_hangup():
        try:
            if backend == "perf":
                return _watch_perf(pid, spec, count, timeout, max_rate, out)
            return _watch_gdb(pid, spec, count, timeout, max_rate, out)
        finally:
            _say_if_replaced(identity, err)


def _say_if_replaced(identity: ProcessIdentity, err) -> None:
    """The watch ended because its process exited and the pid now names another: say replaced."""
    try:
        identity.check()
    except ProcessReplaced as e:
        err.write(f"hftmem: {e}: the watch ended with the original process; nothing was armed on the new one\n")
        err.flush()
    except SourceError:
        pass


def _print(out, text: str) -> None:
    out.write(visible(text, newlines=True) + "\n")  # labels, symbols and values come from the target
    out.flush()


def _watch_perf(pid, spec, count, timeout, max_rate, out) -> int:
    n = 0
    with PerfWatch(pid, spec, max_rate=max_rate) as w:
        _print(out, f"watching {spec.label} ({spec.length} bytes at {spec.address:#x}, {spec.access}) via perf "
                    f"on {w.stats.armed_threads} threads, no ptrace (allowed: {w.granted_by})")
        t0 = w.armed_at
        try:
            for hit in w.hits(timeout=timeout):
                n += 1
                _print(out, "\n".join(format_hit(hit, n, t0)))
                if count is not None and n >= count:
                    break
        finally:
            st = w.stats
            cost = (f", cost {st.cost_per_hit_s * 1e6:.1f} us/hit x {st.rate_hz:.0f} hits/s = "
                    f"{st.engine_cpu_fraction * 100:.2f}% of a core" if st.cost_per_hit_s is not None else "")
            _print(out, f"{n} hits reported, {st.counted} counted by the kernel, {st.lost} lost, {st.elapsed_s:.1f} s"
                        f"{cost}; engine never stopped (perf, no ptrace)")
    return 0


def _watch_gdb(pid, spec, count, timeout, max_rate, out) -> int:
    from hftmem_tui.sources.gdb.session import DEFAULT_MAX_RATE as GDB_MAX_RATE
    from hftmem_tui.sources.gdb.session import GdbSession

    n = 0
    session = GdbSession(pid, max_rate=GDB_MAX_RATE if max_rate is None else max_rate)
    try:
        session.attach()
        t0 = time.time()
        session.watch(spec)
        _print(out, f"watching {spec.label} ({spec.length} bytes at {spec.address:#x}, {spec.access}) via gdb "
                    f"(ptrace, non-stop): attaching stopped the engine for {ms(session.attach_pause_s)}; "
                    f"each hit stops the thread that touched it")
        for hit in session.hits(timeout=timeout, count=count):
            n += 1
            _print(out, "\n".join(format_hit(hit, n, t0) + [f"  thread stopped {ms(hit.pause_s)} for this hit"]))
    finally:
        session.close()
        st = session.stats
        if st.attach_pause_s is None:
            return 0  # never attached: the error says why
        _print(out, f"{n} hits; detached (TracerPid 0); total pause caused: {ms(st.total_pause_s)} (attach "
                    f"{ms(st.attach_pause_s)}, {len(st.hit_pauses_s)} hits {ms(sum(st.hit_pauses_s))}, "
                    f"detach {ms(st.detach_pause_s)})")
    return 0



def run(args) -> int:
    """`hftmem watch`: the parsed arguments to :func:`run_watch`."""
    return run_watch(args.pid, args.target, access=args.access, count=args.count, timeout=args.timeout,
                     via=args.via, max_rate=args.max_rate)
