"""`hftmem watch`: one hardware watchpoint, headless, through perf (default) or gdb.

perf (sources/perfwatch.py) never stops the engine and never ptraces it; gdb
(sources/gdbsession.py) stops the writing thread at each hit and attaches with ptrace, so it is
used on request (``--via gdb``) or when perf events are not permitted (said in one stderr line).
The user's text goes through the expression guard before anything else: ``'x = 1'`` is refused
before a symbol is looked up or a debugger started.
"""

from __future__ import annotations

import sys
import time

from hftmem_tui.errors import AccessDenied
from hftmem_tui.sources.shutdown import unwind_on_hangup
from hftmem_tui.sources.exprguard import check_expression
from hftmem_tui.sources.perf.breakpoints import PerfWatch, check_perf_access, format_hit
from hftmem_tui.sources.procfs import check_target
from hftmem_tui.sources.watchpoint import resolve_target

__all__ = ["run_watch", "choose_backend"]


def choose_backend(pid: int, via: str | None, access: str = "write") -> tuple[str, str | None]:
    """``("perf"|"gdb", note)``: perf unless asked for gdb, perf is not permitted, or a read-only
    watch is asked for (then a note saying why gdb is used). An explicit ``--via perf`` that is not
    permitted raises AccessDenied."""
    if via == "gdb":
        return "gdb", None
    if via is None and access == "read":
        return "gdb", ("perf has no read-only hardware breakpoints (x86 traps reads and writes alike): using "
                       "gdb, which filters the reads (ptrace: the reading thread stops at each hit)")
    try:
        check_perf_access(pid)
    except AccessDenied as exc:
        if via == "perf":
            raise
        return "gdb", f"{exc}; using gdb instead (ptrace: the engine's thread stops at each hit)"
    return "perf", None


def run_watch(pid: int, target: str, *, access: str = "write", count: int | None = None,
              timeout: float | None = None, via: str | None = None, max_rate: float | None = None,
              out=None, err=None) -> int:
    """Watch ``target`` in ``pid``, print one block per hit, then disarm/detach and say what it cost.

    Raises what the sources raise (SourceError subclasses): the CLI prints them as one line.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    check_expression(target)  # refusals come first, before any lookup or attach
    check_target(pid)
    backend, note = choose_backend(pid, via, access)
    spec = resolve_target(pid, target, access)
    if note:
        err.write(f"hftmem: {note}\n")
        err.flush()
    with unwind_on_hangup():
        if backend == "perf":
            return _watch_perf(pid, spec, count, timeout, max_rate, out)
        return _watch_gdb(pid, spec, count, timeout, max_rate, out)


def _print(out, text: str) -> None:
    out.write(text + "\n")
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


def _ms(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds * 1e3:.1f} ms"


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
                    f"(ptrace, non-stop): attaching stopped the engine for {_ms(session.attach_pause_s)}; "
                    f"each hit stops the thread that touched it")
        for hit in session.hits(timeout=timeout, count=count):
            n += 1
            _print(out, "\n".join(format_hit(hit, n, t0) + [f"  thread stopped {_ms(hit.pause_s)} for this hit"]))
    finally:
        session.close()
        st = session.stats
        if st.attach_pause_s is None:
            return 0  # never attached: the error says why
        _print(out, f"{n} hits; detached (TracerPid 0); total pause caused: {_ms(st.total_pause_s)} (attach "
                    f"{_ms(st.attach_pause_s)}, {len(st.hit_pauses_s)} hits {_ms(sum(st.hit_pauses_s))}, "
                    f"detach {_ms(st.detach_pause_s)})")
    return 0

