"""Hostile and random address/expression input: never a traceback, never a write, never a trace.

Pure parsers get many random strings in-process; the real `hftmem dump` and watch-target
resolution then run against a live engine with hostile strings aimed at fields the engine never
changes (magic, version, capacities...), so any write would show in a zero-stop read afterwards.
"""

from __future__ import annotations

import contextlib
import io
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hftmem_tui import cli
from hftmem_tui.sources.errors import SourceError
from hftmem_tui.sources.memory import read_memory
from hftmem_tui.sources.symbols import SymbolTable, check_symbol_expr
from hftmem_tui.sources.watch import WatchSpec, parse_target, resolve_target
from tests.disturbance import EngineStopMonitor
from tests.faults.conftest import assert_running_untraced

pytestmark = pytest.mark.fault

ACCEPTED_EXPR = re.compile(r"\s*(::)?[A-Za-z_]\w*(::[A-Za-z_]\w*)*(\.[A-Za-z_]\w*|\[\s*(0[xX][0-9a-fA-F]+|\d+)\s*\])*\s*")

# Fields the demo engine sets once at start and never writes again: a write by us would show.
CONSTANT_FIELDS = ("hftmem_engine_stats.magic", "hftmem_engine_stats.version", "hftmem_engine_stats.pid",
                   "hftmem_engine_stats.start_time_ns", "hftmem_engine_stats.pool_capacity",
                   "hftmem_engine_stats.arena_capacity", "hftmem_engine_stats.ring_capacity",
                   "hftmem_engine_stats.scenarios", "hftmem_order_pool.capacity_",
                   "hftmem_scratch_arena.base_", "hftmem_scratch_arena.capacity_", "hftmem_md_ring.capacity_")

HOSTILE_TEMPLATES = (
    "{f}=0", "{f} = 1", "{f}+=1", "{f}++", "--{f}", "{f}|=255", "{f}<<=3", "set var {f}=7", "print {f}=9",
    "{f}=0;quit", "call memset(&{f}, 0, 8)", "(char)({f}=1)", "$rip={f}", "$pc", "*(&{f})=0", "&{f}",
    "{f},{f}=2", "{f}\n{f}=0", "{f} # =0", "{f}\\\n=0", "'{f}'=0", "`{f}`", "{f}[0]=88", "{f}->x=1",
    "{f}=={f}", "{f} !=0", "{f}[-1]", "{f}[0x100000000]", "{f}:8", "0x0:8", "-1", "18446744073709551616",
    "{f}\x00=0", "{f}\u200b=0", "{f}\uff1d0", "shell kill -STOP {pid}", "attach {pid}", "detach",
    "signal SIGSTOP", "-ex", "--len", "{f}.", "{f}..x", "::{f}", "{f}[", "{f}]", " ", "",
)

texts = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="hftmem_engine_stats.[]0x123=+-*&$(),;'\"\\ :_ab\n\t", max_size=40),
    st.builds(lambda t, f, pid: t.format(f=f, pid=pid), st.sampled_from(HOSTILE_TEMPLATES),
              st.sampled_from(CONSTANT_FIELDS), st.just("1")),
)


@settings(max_examples=400, deadline=None)
@given(texts)
def test_parsers_refuse_or_accept_only_plain_paths(text):
    """Each parser either accepts (and then only a plain symbol path / number) or raises a typed error."""
    try:
        check_symbol_expr(text)
        assert ACCEPTED_EXPR.fullmatch(text), text
    except SourceError:
        pass
    try:
        expr, address, length = parse_target(text)
        if expr:
            assert ACCEPTED_EXPR.fullmatch(expr), text
        else:
            assert address is not None and address >= 0 and (length is None or length >= 0)
    except SourceError:
        pass
    address = cli._address(text)
    assert address is None or (address >= 0 and re.fullmatch(r"\s*(0[xX][0-9a-fA-F]+|[0-9]+)\s*", text))


def _run_main(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = cli.main(list(argv))
        except SystemExit as e:  # argparse's usage errors
            rc = e.code
    return rc, err.getvalue()


@pytest.fixture(scope="module")
def live_engine(engine_binary):
    """One engine for every example (hypothesis runs many per test); stopped at the end."""
    from hftmem_tui.sources.engine import start_engine
    from tests.conftest import stop_process

    proc = start_engine(binary=engine_binary)
    yield proc.pid
    stop_process(proc.pid)


def _constant_bytes(pid: int, table: SymbolTable) -> dict[str, bytes]:
    out = {}
    for f in CONSTANT_FIELDS:
        r = table.resolve_expr(f)
        out[f] = read_memory(pid, table.runtime_address(r, pid), r.size)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts)
def test_hostile_dump_and_watch_targets_never_write_or_trace(live_engine, text):
    pid = live_engine
    with SymbolTable.for_pid(pid) as table:
        before = _constant_bytes(pid, table)
        with EngineStopMonitor(pid, poll_s=0.001) as mon:
            rc, err = _run_main("dump", str(pid), text, "--len", "16")
            try:
                spec = resolve_target(pid, text, table=table)
                assert isinstance(spec, WatchSpec) and spec.address > 0
            except SourceError:
                pass
        after = _constant_bytes(pid, table)
    assert "Traceback" not in err
    assert rc in (0, 1, 2), (text, rc, err)
    if rc:
        assert len(err.strip().splitlines()) == 1 and err.startswith("hftmem"), (text, err)
    assert after == before, text
    assert mon.tracers == {0} and not mon.states & {"t", "T"}, str(mon)
    assert_running_untraced(pid)
