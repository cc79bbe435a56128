"""The `hftmem` command line on real subprocesses of `python -m hftmem_tui.cli`: every
subcommand has a --help that exits 0, and a bad argument is one line on stderr with exit 2, never
a traceback. No target is needed: every case here fails (or succeeds) before one is read."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_cli

SUBCOMMANDS = ("engine", "attach", "replay", "scenario", "snapshot", "audit", "dump", "record", "export",
               "demo", "allocs", "watch")

# (argv, a piece of the one stderr line)
BAD_ARGUMENTS = [
    ((), "the following arguments are required: COMMAND"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
    (("engine", "--scenario", "nosuch"), "unknown scenario 'nosuch'"),
    (("engine", "--tick-rate", "abc"), "invalid int value: 'abc'"),
    (("attach", "abc"), "not a pid: 'abc'"),
    (("attach", "1", "--refresh", "0"), "seconds must be 0.05..2592000"),
    (("attach", "1", "--graph", "ascii"), "invalid choice: 'ascii'"),
    (("replay",), "the following arguments are required: FILE"),
    (("replay", "f.jsonl", "--speed", "0"), "playback speed must be between 0.01 and 1000"),
    (("replay", "f.jsonl", "--speed", "fast"), "'fast' is not a playback speed"),
    (("scenario", "0"), "not a pid: '0'"),
    (("scenario", "1", "--on", "nosuch"), "unknown scenario 'nosuch'"),
    (("snapshot", "-5"), "not a pid: '-5'"),
    (("audit", "1", "--window", "4000"), "window must be 0..3600 seconds"),
    (("audit", "1", "--window", "soon"), "not a number of seconds: 'soon'"),
    (("dump", "1"), "the following arguments are required: ADDR|SYMBOL[.field]"),
    (("dump", "1", "0x10", "--len", "0"), "length must be 1..268435456 bytes"),
    (("dump", "1", "0x10", "--format", "xq"), "invalid choice: 'xq'"),
    (("record", "1"), "the following arguments are required: --out"),
    (("record", "1", "--out", "r.jsonl", "--max-bytes", "1K"), "size must be at least 4096 bytes"),
    (("record", "1", "--out", "r.jsonl", "--max-bytes", "lots"), "not a size: 'lots'"),
    (("record", "1", "--out", "r.jsonl", "--rotate", "-1"), "must be >= 0"),
    (("record", "1", "--out", "/nonexistent/r.jsonl", "--rotate", "2"), "--rotate needs --max-bytes"),
    (("export", "1", "--listen", ":80"), "name the address to listen on"),
    (("export", "1", "--listen", "127.0.0.1:99999"), "port must be 1..65535"),
    (("export", "1", "--listen", "host:http"), "not a port: 'http'"),
    (("demo", "--chapter", "nosuch"), "unknown chapter 'nosuch'"),
    (("allocs", "1", "--hot", "abc"), "--hot takes TID,TID,... or auto"),
    (("allocs", "1", "--duration", "0"), "seconds must be in (0, 3600]"),
    (("watch", "1"), "the following arguments are required: SYMBOL[.field]|ADDR[:LEN]"),
    (("watch", "1", "x", "--access", "bogus"), "invalid choice: 'bogus'"),
    (("watch", "1", "x", "--count", "many"), "not a count: 'many'"),
]


def test_top_level_help_lists_every_subcommand():
    r = run_cli("--help")
    assert r.returncode == 0 and r.stderr == ""
    listed = re.findall(r"^    (\w+)\s", r.stdout, re.MULTILINE)
    assert tuple(listed) == SUBCOMMANDS


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help_exits_0(command):
    r = run_cli(command, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: hftmem {command} ") and r.stderr == ""


@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else None)
def test_bad_argument_is_one_stderr_line_and_exit_2(argv, message):
    r = run_cli(*argv)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hftmem") and message in lines[0], r.stderr


def test_headless_command_modules_do_not_import_textual():
    """Running a headless command loads its module: none of them (nor the argument types) pulls
    in Textual or Rich; attach, replay and the TUI demo load it only when they run."""
    modules = ["hftmem_tui.cli", "hftmem_tui.commands.args", "hftmem_tui.commands.engine",
               "hftmem_tui.commands.scenario", "hftmem_tui.commands.audit", "hftmem_tui.commands.dump",
               "hftmem_tui.commands.demo", "hftmem_tui.commands.attach", "hftmem_tui.commands.replay"]
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stderr or r.stdout


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("argv", [("scenario", "{pid}"), ("audit", "{pid}", "--window", "0"),
                                  ("dump", "{pid}", "0x1000"), ("replay", "/nonexistent/recording.jsonl")],
                         ids=lambda v: v[0])
def test_runtime_error_is_one_stderr_line_and_exit_1(argv, dead_pid):
    r = run_cli(*(a.format(pid=dead_pid) for a in argv))
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hftmem: "), r.stderr
