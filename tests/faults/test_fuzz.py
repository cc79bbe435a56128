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
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hftmem_tui import cli
from hftmem_tui.commands.args import parse_address
from hftmem_tui.errors import SourceError
from hftmem_tui.sources.memory import read_memory
from hftmem_tui.sources.symbols import SymbolTable, check_symbol_expr
from hftmem_tui.sources.watchpoint import WatchSpec, parse_target, resolve_target
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
    address = parse_address(text)
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


# ---------------------------------------------------------------- the expression guard (gdb input)

EXPR_TEMPLATES = HOSTILE_TEMPLATES + (
    "print {f}", "p/x {f}", "x/8xb &{f}", "output {f}", "ptype {f}", "whatis {f}", "info registers",
    "p {f} = 5", "p {f}=0", "p $_siginfo", "p $rax = 1", "p (*(long*)&{f}) = 1", "p ((void(*)())0)()",
    "p abort()", "p malloc(16)", "p \"AAAA\"", "p sizeof({f})", "p {f} == 1", "p {f} <= 2", "p {f} >>= 1",
    "call abort()", "jump *0", "signal SIGKILL", "return", "kill", "shell id", "!id", "| p 1 | sh",
    "python import os", "pi 1", "source /etc/passwd", "compile code {f}=0", "set var {f}=3",
    "set {f}=3", "set $x = 1", "thread apply all p {f}=0", "thread apply all bt", "frame function main",
    "restore /etc/passwd binary 0", "gcore", "detach", "p {f}\np {f}=1", "p {f}; p {f}=1", "dprintf main,\"x\"",
    "p/x {f}[0]@4", "p -{f}", "p !{f}", "p ~{f}", "p {f}--", "p --{f}", "p {f} ? 1 : 2", "p 'a'", "p '\\''",
)

gdb_texts = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="pxrint/ hftmem_engine_stats.[]0x123=+-*&$()<>!~?:,;'\"\\\n|", max_size=40),
    st.builds(lambda t, f: t.format(f=f, pid=1), st.sampled_from(EXPR_TEMPLATES), st.sampled_from(CONSTANT_FIELDS)),
)

_WRITES = re.compile(r"(?<![=!<>])=(?!=)|\+\+|--|[-+*/%&|^]=|<<=|>>=")


@settings(max_examples=500, deadline=None)
@given(gdb_texts)
def test_expression_guard_refuses_writes_calls_and_escapes(text):
    """Accepted text never assigns, calls, or leaves gdb's read-only commands; refusals are typed, one line."""
    from hftmem_tui.sources.exprguard import check_command, check_expression

    for check in (check_expression, check_command):
        try:
            ok = check(text)
        except SourceError as e:
            assert "\n" not in str(e), str(e)
            continue
        args = ok
        if check is check_command:  # the command word must be a read-only one; its argument is checked below
            m = re.match(r"\s*([!|]|[A-Za-z][\w-]*)(.*)", ok, re.S)
            assert m and m.group(1) in READ_ONLY, (text, ok)
            if m.group(1) not in EXPRESSION_COMMANDS:
                continue  # info/show/echo/bt...: gdb reads their argument as words, never evaluates it
            args = re.sub(r"^/\w*", "", m.group(2).strip())  # print/x: the format is not an expression
        bare = re.sub(r"'(?:[^'\\]|\\.)*'?", "", args)  # character literals neither write nor call
        assert not _WRITES.search(bare), (check.__name__, text)
        assert '"' not in bare and ";" not in bare, (check.__name__, text)
        assert not re.search(r"\b(?!sizeof\b|alignof\b|_Alignof\b|typeof\b|__typeof__\b|__typeof\b|decltype\b|TYPEOF\b)"
                             r"[$A-Za-z_][$\w]*\s*\(", bare), (check.__name__, text)


EXPRESSION_COMMANDS = {"print", "p", "inspect", "output", "x", "ptype", "whatis"}
READ_ONLY = {"print", "p", "inspect", "output", "x", "ptype", "whatis", "info", "i", "backtrace", "bt", "where",
             "frame", "f", "up", "down", "list", "l", "disassemble", "thread", "echo", "pwd", "show"}


@pytest.fixture(scope="module")
def attached_session(live_engine):
    """A read-only GdbSession attached (ptrace) to the disposable fuzz engine; detached at the end."""
    from hftmem_tui.sources.gdb.session import GdbSession

    session = GdbSession(live_engine, guardian=True)
    session.attach()
    yield session
    session.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gdb_texts)
@example("{").via("found by this test: user braces went through str.format")
@example("}{0}")
def test_hostile_expressions_through_attached_gdb_never_write(live_engine, attached_session, text):
    """The real path: what a user types goes to GdbSession.evaluate/console on the attached engine.
    Refused or evaluated, the engine's never-changing fields are byte for byte the same."""
    pid = live_engine
    with SymbolTable.for_pid(pid) as table:
        before = _constant_bytes(pid, table)
        for call in (attached_session.evaluate, attached_session.console):
            try:
                call(text)
            except SourceError:
                pass
        after = _constant_bytes(pid, table)
    assert after == before, text


def test_zz_fuzzed_engine_ends_running_and_untraced(live_engine, attached_session):
    attached_session.close()
    assert_running_untraced(live_engine)
