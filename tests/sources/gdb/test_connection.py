"""The one MI connection, on a real gdb with no process: tokens, pipelined answers, refusals, quit."""

from __future__ import annotations

import shutil

import pytest

from hftmem_tui.errors import ToolFailed, ToolMissing
from hftmem_tui.sources import procfs
from hftmem_tui.sources.gdb.connection import GdbCommandError, MiConnection, mi_quote

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")


@pytest.fixture
def mi():
    conn = MiConnection(file_only=True, timeout=20)
    yield conn
    conn.quit()


def test_pipelined_answers_each_go_to_their_own_wait(mi):
    """Two requests in one write, waited for in the other order: each gets its own answer and
    the console output printed before it."""
    first, second = mi.send("-interpreter-exec console " + mi_quote("echo one\\n"),
                            "-data-evaluate-expression " + mi_quote("6*7"))
    assert mi.wait(second, "6*7").payload == {"value": "42"}
    assert mi.wait(first, "echo").console == "one\n"
    with pytest.raises(ValueError, match="never sent or already answered"):
        mi.wait(first, "echo")


def test_error_answer_raises_with_gdbs_message(mi):
    with pytest.raises(GdbCommandError, match="No symbol") as info:
        mi.request("-data-evaluate-expression no_such_symbol_here")
    assert info.value.gdb_message.startswith("No symbol") and str(info.value).startswith("gdb: No symbol")
    assert mi.request("-data-evaluate-expression 1+1").payload == {"value": "2"}  # still in step


@pytest.mark.parametrize("command", ["-target-attach 1", "-exec-run", "attach 1", "target remote :1",
                                     '-interpreter-exec console "shell true"', "-data-evaluate-expression 1\nattach 1"])
def test_file_only_refuses_what_touches_a_process(mi, command):
    with pytest.raises(ValueError, match="never touches a process"):
        mi.send(command)


def test_one_request_is_one_line():
    conn = MiConnection(file_only=False)
    try:
        with pytest.raises(ValueError, match="one request is one line"):
            conn.send("-gdb-version\n-target-attach 1")
    finally:
        conn.quit()


def test_quit_stops_gdb_and_is_idempotent(mi):
    proc_pid = mi.pid
    mi.quit()
    mi.quit()
    assert not mi.alive()
    with pytest.raises(ToolFailed, match="not running"):
        mi.request("-gdb-version")
    assert not procfs.process_alive(proc_pid)  # reaped


def test_missing_gdb():
    with pytest.raises(ToolMissing):
        MiConnection("gdb-not-installed-here", file_only=True)
