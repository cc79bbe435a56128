"""The `hftmem` command line on real subprocesses of `python -m hftmem_tui.cli`: every
subcommand has a --help that exits 0, and a bad argument is one line on stderr with exit 2, never
a traceback. No target is needed: every case here fails (or succeeds) before one is read."""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, run_cli

SUBCOMMANDS = ("engine", "attach", "replay", "scenario", "snapshot", "audit", "dump", "record", "export",
               "demo", "allocs", "watch")

# (argv, a piece of the one stderr line)
BAD_ARGUMENTS = [
    ((), "the following arguments are required: COMMAND"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
    (("engine", "--scenario", "nosuch"), "unknown scenario 'nosuch'"),
    (("engine", "--tick-rate", "abc"), "not a count: 'abc'"),
    (("engine", "--tick-rate", "0"), "must be >= 1"),
    (("attach", "0"), "not a pid: '0'"),
    (("attach", "99999999999"), "not a pid: '99999999999'"),
    (("attach", "a["), "not a valid name pattern: 'a['"),
    (("attach", "a\x1bb"), "not a pid or a process name"),
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
    (("watch", "1", "x", "--count", "0"), "must be >= 1"),
    (("watch", "1", "01"), "a leading zero is octal to gdb: write 0x1 or 1"),
    (("watch", "1", "08"), "8 and 9 are not octal digits"),
    (("watch", "1", "0x10:01"), "not a valid length: '01'"),
    (("watch", "1", "0x10:0x10000000000000000"), "more than 64 bits"),
    (("watch", "1", "x", "--max-rate", "nan"), "must be a finite number"),
    (("watch", "1", "x", "--max-rate", "inf"), "must be a finite number"),
    (("watch", "1", "x", "--max-rate", "-1"), "rate must be 0 (no guard) or up to 10000000"),
    (("dump", "1", "9" * 5000), "(5000 characters)' (more than 64 bits"),
    (("dump", "1", "0x1" + "0" * 16), "more than 64 bits"),
    (("dump", "1", "18446744073709551616"), "address out of range"),
    (("dump", "1", "0x10", "--len", "9" * 5000), "length must be 1..268435456 bytes"),
    (("record", "1", "--out", "r.jsonl", "--max-bytes", "1e308"), "not a size: '1e308'"),
    (("record", "1", "--out", "r.jsonl", "--max-bytes", "2000000G"), "size must be at most 1T"),
    (("record", "1", "--out", "r.jsonl", "--rotate", "5000"), "must be <= 1000"),
    (("record", "1", "--out", "r.jsonl", "--smaps-every", "0"), "must be >= 1"),
    (("record", "1", "--out", "r.jsonl", "--interval", "nan"), "must be a finite number"),
    (("export", "1", "--interval", "inf"), "must be a finite number"),
    (("replay", "f.jsonl", "--speed", "nan"), "playback speed must be between 0.01 and 1000"),
    (("audit", "1", "--window=-inf"), "must be a finite number"),
    (("allocs", "1", "--warmup", "nan"), "must be a finite number"),
    (("demo", "--refresh", "1e999"), "must be a finite number"),
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


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0 and re.fullmatch(r"hftmem \d+\.\d+\.\d+\S*\n", r.stdout), r.stdout + r.stderr


def _subparsers():
    from hftmem_tui.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_option_has_help():
    """Every argument of every command says what it is in --help (scenario --on/--off had none)."""
    missing = [f"{name} {'/'.join(a.option_strings) or a.dest}" for name, sub in _subparsers().items()
               for a in sub._actions if not a.help]
    assert missing == []


def test_watch_help_and_readme_say_what_watch_prints():
    """`watch` prints a block of lines per hit: its --help and the README say so."""
    r = run_cli("--help")
    assert "one block per hit" in r.stdout and "one line per hit" not in r.stdout
    readme = (ROOT / "README.md").read_text()
    assert "one line per hit" not in readme


# Every numeric option and the values no option accepts.
NUMERIC_OPTIONS = [("engine", "--tick-rate"), ("attach", "1", "--refresh"), ("replay", "f", "--speed"),
                   ("audit", "1", "--window"), ("dump", "1", "0x10", "--len"), ("record", "1", "--out", "f", "--interval"),
                   ("record", "1", "--out", "f", "--duration"), ("record", "1", "--out", "f", "--max-bytes"),
                   ("record", "1", "--out", "f", "--rotate"), ("record", "1", "--out", "f", "--smaps-every"),
                   ("export", "1", "--interval"), ("export", "1", "--smaps-every"), ("demo", "--refresh"),
                   ("allocs", "1", "--duration"), ("allocs", "1", "--warmup"), ("watch", "1", "x", "--count"),
                   ("watch", "1", "x", "--timeout"), ("watch", "1", "x", "--max-rate")]
ADDRESS_ARGS = [("dump", "1"), ("watch", "1"), ("watch", "1", "0x10:")]


def _main(*argv: str) -> tuple[int, str, str]:
    """cli.main in this process (a refused argument never reaches a target): (status, stdout, stderr)."""
    from hftmem_tui import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(list(argv))
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def _refused(argv) -> None:
    rc, out, err = _main(*argv)
    assert rc == 2 and out == "" and "Traceback" not in err, (argv, rc, err)
    assert len(err.splitlines()) == 1 and err.startswith("hftmem"), (argv, err)


bad_floats = st.one_of(st.sampled_from(["nan", "inf", "-inf", "NaN", "Infinity", "1e999", "-1", "-0.5"]),
                       st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: not f == f or abs(f) == math.inf
                                                                             or f < 0).map(repr))
# Decimal strings of 20..6000 digits (beyond 2^64; past 4300 digits int() itself refuses them).
huge_ints = st.builds(lambda head, tail: head + tail, st.sampled_from("123456789"),
                      st.text("0123456789", min_size=19, max_size=6000))


@settings(max_examples=150, deadline=None)
@given(option=st.sampled_from(NUMERIC_OPTIONS), value=st.one_of(bad_floats, huge_ints))
def test_numeric_options_refuse_nan_inf_negative_and_huge(option, value):
    """NaN, infinities, negatives and numbers beyond 2^64: one stderr line, exit 2, no traceback."""
    _refused([*option, value] if not value.startswith("-") else [*option[:-1], f"{option[-1]}={value}"])


@settings(max_examples=150, deadline=None)
@given(where=st.sampled_from(ADDRESS_ARGS),
       value=st.one_of(huge_ints, st.integers(min_value=2**64, max_value=2**4096).map(hex), st.integers(min_value=0).map(lambda n: f"0{n}"),
                       st.from_regex(r"\A[0-9][0-9a-zA-Z_.:+-]{0,40}\Z")))
def test_address_and_length_are_numbers_gdb_reads_one_way(where, value):
    """An address or length that starts with a digit is a number: accepted only if it is one gdb and
    hftmem read alike (0x hex, decimal without a leading zero, below 2^64), else one line, exit 2."""
    from hftmem_tui.commands import args

    text = where[-1] + value if where[-1].endswith(":") else value
    argv = [*where[:2], text] if where[-1].endswith(":") else [*where, text]
    ok = bool(re.fullmatch(r"0x[0-9a-f]{1,16}|[1-9][0-9]{0,19}|0", value, re.I)) and int(value, 0) < 2**64
    if ok:
        assert args.parse_address(value) == int(value, 0)
        return
    _refused(argv)
    assert args.parse_address(value) is None  # never raises: the argparse type said why


@pytest.mark.parametrize("command", ["dump", "watch"])
def test_executable_path_with_a_newline_is_one_line_before_gdb(command, engine_binary, tmp_path):
    """gdb takes one request per line: a path with a newline is refused in one line, gdb never started."""
    import shutil

    from hftmem_tui.sources.engine import start_engine
    from tests.conftest import stop_process

    weird = tmp_path / "new\nline"
    weird.mkdir()
    shutil.copy(engine_binary, weird / "hftmem-engine")
    proc = start_engine(binary=weird / "hftmem-engine")
    try:
        argv = [command, str(proc.pid), "hftmem_engine_stats.ticks"] + (["--timeout", "1"] if command == "watch" else [])
        r = run_cli(*argv)
        assert r.returncode == 1 and "Traceback" not in r.stderr and r.stdout == "", r.stderr
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and "new\\x0aline" in lines[0] and "cannot be passed to gdb" in lines[0], r.stderr
        assert "refusing gdb request" not in r.stderr
        assert "TracerPid:\t0" in open(f"/proc/{proc.pid}/status").read()
    finally:
        stop_process(proc.pid)


def _stderr_on_a_terminal(*argv: str) -> tuple[int, bytes, bytes]:
    """Run the CLI with stderr on a pseudo-terminal: (status, stdout, what the terminal got)."""
    import os

    master, slave = os.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "hftmem_tui.cli", *argv], stdout=subprocess.PIPE,
                              stderr=slave, cwd=ROOT, timeout=60)
        os.close(slave)
        slave = -1
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the other end is closed and drained
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return proc.returncode, proc.stdout, seen


@pytest.mark.parametrize(("argv", "shown"), [
    (("record", "{pid}", "--out", "{out}", "--duration", "1", "--interval", "0.2", "--no-perf"), b"recording pid {pid}: "),
    (("snapshot", "{pid}", "--no-perf"), b"snapshot of pid {pid}: reading every mapping"),
], ids=["record", "snapshot"])
def test_long_work_shows_progress_on_a_terminal_only(argv, shown, engine, tmp_path):
    pid = engine()
    argv = [a.format(pid=pid, out=tmp_path / "r.jsonl") for a in argv]
    rc, out, tty = _stderr_on_a_terminal(*argv)
    assert rc == 0, tty
    assert b"\r\x1b[K" + shown.replace(b"{pid}", str(pid).encode()) in tty and tty.endswith(b"\r\x1b[K"), tty
    assert b"\x1b" not in out  # stdout keeps its plain output
    r = run_cli(*argv)
    assert r.returncode == 0 and "\x1b" not in r.stderr and "recording pid" not in r.stderr
