"""The guard on what a user types to gdb: writes, calls, signals and escapes never get through."""

from __future__ import annotations

import pytest

from hftmem_tui.sources.exprguard import (
    ForbiddenExpression,
    check_command,
    check_expression,
)

READ_ONLY_EXPRESSIONS = [
    "hftmem_engine_stats.ticks",
    "hftmem_order_pool.slots_[3].price",
    "hftmem_last_order.price == 0",
    "a != b && c <= d || e >= f",
    "x << 2 >> 1",
    "*(unsigned long *) 0x55d0c0de1000",
    "{int} 0x1000",
    "sizeof(hftmem_last_order)",
    "(long)hftmem_last_order.qty",
    "hftmem_order_pool.slots_[0]@4",
    "$rip",
    "$_siginfo",
    "'engine.cpp'::hftmem_last_order",
    "c == '='",
    "-x - -1",
]

REFUSED_EXPRESSIONS = [
    ("x = 1", "assignments"),
    ("hftmem_last_order.price=0", "assignments"),
    ("$rax = 0", "assignments"),
    ("$pc=0x1234", "assignments"),
    ("a += 2", "assignments"),
    ("a -= 2", "assignments"),
    ("a *= 2", "assignments"),
    ("a /= 2", "assignments"),
    ("a %= 2", "assignments"),
    ("a &= 2", "assignments"),
    ("a |= 2", "assignments"),
    ("a ^= 2", "assignments"),
    ("a <<= 2", "assignments"),
    ("a >>= 2", "assignments"),
    ("x++", r"\+\+ and --"),
    ("--x", r"\+\+ and --"),
    ("abort()", "function call"),
    ("malloc (16)", "function call"),
    ("$_strlen(x)", "function call"),
    ("(*handler)(1)", "calls through a pointer"),
    ("table[2](0)", "calls through a pointer"),
    ('"AAPL"', "string literals"),
    ("x == 1; y = 2", "one expression only"),
    ("x\ny", "one expression only"),
    ("", "empty"),
    ("   ", "empty"),
]


@pytest.mark.parametrize("expr", READ_ONLY_EXPRESSIONS)
def test_read_only_expressions_pass(expr):
    assert check_expression(expr) == expr.strip()


@pytest.mark.parametrize(("expr", "why"), REFUSED_EXPRESSIONS)
def test_writes_and_calls_refused(expr, why):
    with pytest.raises(ForbiddenExpression, match=why) as e:
        check_expression(expr)
    assert "\n" not in str(e.value)


def test_allow_writes_is_an_explicit_opt_in_for_assignments_only():
    assert check_expression("x = 1", allow_writes=True) == "x = 1"
    assert check_expression("x++", allow_writes=True) == "x++"
    with pytest.raises(ForbiddenExpression, match="function call"):
        check_expression("x = f(1)", allow_writes=True)  # calls stay refused


READ_ONLY_COMMANDS = [
    "print hftmem_engine_stats.ticks",
    "p/x $rip",
    "x/8xb &hftmem_last_order",
    "info registers",
    "info threads",
    "bt",
    "backtrace 5",
    "frame 1",
    "up",
    "ptype struct EngineStats",
    "whatis hftmem_last_order",
    "thread 2",
    "thread apply all bt",
    "list engine.cpp:100",
    "set print pretty on",
]

REFUSED_COMMANDS = [
    ("set var x = 1", "set var"),
    ("set variable hftmem_last_order.qty = 0", "set var"),
    ("set $rax = 0", "set var"),
    ("set x = 1", "set var"),
    ("set scheduler-locking on", "only 'set print"),
    ("call abort()", "calls a function"),
    ("print abort()", "function call"),
    ("p x = 1", "assignments"),
    ("output x++", r"\+\+"),
    ("jump *0x1000", "program counter"),
    ("signal SIGKILL", "sends a signal"),
    ("queue-signal 9", "sends a signal"),
    ("return 0", "pops a frame"),
    ("kill", "kills the engine"),
    ("shell rm -rf /", "shell command"),
    ("!ls", "shell command"),
    ("pipe bt | grep x", "shell command"),
    ("python import os", "Python"),
    ("py print(1)", "Python"),
    ("source /tmp/x.gdb", "script"),
    ("compile code x = 1", "injects code"),
    ("continue", "controls the target"),
    ("detach", "controls the target"),
    ("run", "controls the target"),
    ("thread apply all call abort()", "calls a function"),
    ("thread apply 1 2 set var x = 1", "set var"),
    ("gcore", "dump its memory"),
    ("watch x", "only read-only commands"),
    ("delete", "only read-only commands"),
]


@pytest.mark.parametrize("cmd", READ_ONLY_COMMANDS)
def test_read_only_commands_pass(cmd):
    assert check_command(cmd) == cmd


@pytest.mark.parametrize(("cmd", "why"), REFUSED_COMMANDS)
def test_dangerous_commands_refused(cmd, why):
    with pytest.raises(ForbiddenExpression, match=why):
        check_command(cmd)


def test_set_var_only_with_allow_writes():
    assert check_command("set var x = 1", allow_writes=True) == "set var x = 1"
    with pytest.raises(ForbiddenExpression, match="calls a function"):
        check_command("call f()", allow_writes=True)
