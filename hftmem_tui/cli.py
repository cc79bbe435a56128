"""The `hftmem` command: the argument parser and the dispatch to one module per command.

Every error a user can cause ends as one line on stderr (``hftmem: ...``) and a non-zero
exit status, never a traceback. A command's module is imported only when that command runs,
so a headless command never loads Textual (tests/test_import_hygiene.py).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from hftmem_tui.commands import args as types
from hftmem_tui.errors import AccessDenied, SourceError
from hftmem_tui.sources.procfs import PERMISSION_HINT
from hftmem_tui.textsafe import visible

EXIT_ERROR = 1
EXIT_USAGE = 2
PID_HELP = ("a pid, or a process name: a pattern matched against the process name as pgrep does "
            "(an exact name first); several matches are refused with the candidates listed")

class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: {visible(message)} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    """``hftmem_tui.commands.<name>.run``, imported when the command runs, not when it is parsed."""

    def run(args: argparse.Namespace) -> int:
        return importlib.import_module(f"hftmem_tui.commands.{name}").run(args)

    return run


# --------------------------------------------------------------------------- parser


def _add_engine(sub) -> None:
    e = sub.add_parser("engine", help="run the native demo engine alone (prints its pid)")
    e.add_argument("--scenario", action="append", default=[], type=types.scenario, metavar="NAME",
                   help="turn a bug scenario on at start (repeatable; see --list-scenarios)")
    e.add_argument("--detach", action="store_true", help="start in the background and print the pid alone")
    e.add_argument("--spin", action="store_true", help="run flat out instead of paced (uses two cores)")
    e.add_argument("--tick-rate", type=types.tick_rate, default=None, metavar="N",
                   help="market-data ticks per second, 1..10000000 (paced mode)")
    e.add_argument("--control", default=None, metavar="NAME", help="abstract socket name (default hftmem-engine-PID)")
    e.add_argument("--list-scenarios", action="store_true", help="list the scenarios and exit")
    e.set_defaults(func=_command("engine"))


def _add_attach(sub) -> None:
    at = sub.add_parser("attach", help="the live TUI on a running process, zero-stop")
    at.add_argument("pid", type=types.target, metavar="PID|NAME", help=PID_HELP)
    at.add_argument("--refresh", type=types.positive_seconds, default=1.0, metavar="S",
                    help="seconds between samples (default 1: low cost to the target and to the terminal)")
    at.add_argument("--graph", choices=("braille", "block"), default="braille",
                    help="graph characters (block for fonts without braille)")
    at.add_argument("--no-perf", action="store_true", help="do not run perf stat")
    at.add_argument("--allocators", default=None, metavar="FILE",
                    help="TOML file describing the engine's allocator globals (see examples/allocators.toml)")
    at.set_defaults(func=_command("attach"))


def _add_replay(sub) -> None:
    rp = sub.add_parser("replay", help="the attach TUI, offline, on a `hftmem record` file, with a time cursor")
    rp.add_argument("file", metavar="FILE", help="a recording written by `hftmem record --out FILE`")
    rp.add_argument("--at", default="end", metavar="WHEN",
                    help="where the cursor starts: end (default: the whole recording loaded), start, "
                         "@SECONDS from the start, or a clock time HH:MM[:SS]")
    rp.add_argument("--speed", type=types.speed, default=1.0, metavar="N", help="playback speed, N x recorded time")
    rp.add_argument("--play", action="store_true", help="start playing at once (from the start if at the end)")
    rp.add_argument("--graph", choices=("braille", "block"), default="braille",
                    help="graph characters (block for fonts without braille)")
    rp.set_defaults(func=_command("replay"))


def _add_scenario(sub) -> None:
    s = sub.add_parser("scenario", help="switch scenarios of a running engine on or off, print its state")
    s.add_argument("pid", type=types.target, metavar="PID|NAME", help=PID_HELP)
    s.add_argument("--on", action="append", default=[], type=types.scenario, metavar="NAME",
                   help="turn this scenario on (repeatable; `hftmem engine --list-scenarios` lists them)")
    s.add_argument("--off", action="append", default=[], type=types.scenario, metavar="NAME",
                   help="turn this scenario off (repeatable; applied after --on)")
    s.add_argument("--control", default=None, metavar="NAME", help="socket name if the engine was started with --control")
    s.set_defaults(func=_command("scenario"))


def _add_snapshot(sub) -> None:
    sn = sub.add_parser("snapshot", help="one sample of every source, headless and zero-stop")
    sn.add_argument("pid", type=types.target, metavar="PID|NAME", help=PID_HELP)
    sn.add_argument("--json", action="store_true", help="one JSON object on stdout")
    sn.add_argument("--no-perf", action="store_true", help="skip the 200 ms perf stat sample")
    sn.add_argument("--numa", action="store_true",
                    help="also read numa_maps: pages per NUMA node (a second walk of the page tables)")
    sn.add_argument("--allocators", default=None, metavar="FILE",
                    help="TOML file describing the engine's allocator globals (see examples/allocators.toml)")
    sn.set_defaults(func=_command("snapshot"))


def _add_audit(sub) -> None:
    a = sub.add_parser("audit", help="readiness checks (mlock, huge pages, NUMA, swap, faults, growth, affinity, policy)")
    a.add_argument("pid", type=types.target, metavar="PID|NAME", help=PID_HELP)
    a.add_argument("--json", action="store_true", help="one JSON object on stdout")
    a.add_argument("--window", type=types.window, default=2.0, metavar="S",
                   help="seconds of VmRSS/fault history to take first (default 2; RSS growth needs 20+)")
    a.set_defaults(func=_command("audit"))


def _add_dump(sub) -> None:
    d = sub.add_parser("dump", help="memory as gdb x/ lines, read without stopping the target")
    d.add_argument("pid", type=types.target, metavar="PID|NAME", help=PID_HELP)
    d.add_argument("what", metavar="ADDR|SYMBOL[.field]", type=types.address_or_symbol,
                   help="0x hex or decimal (no leading zero: gdb would read it as octal), below 2^64; "
                        "or a global symbol, with .field for a member")
    d.add_argument("--len", type=types.length, default=None, metavar="N",
                   help="bytes to read (default: the symbol's size, or 64 for an address)")
    d.add_argument("--format", choices=("xb", "xh", "xw", "xg", "s"), default="xb",
                   help="as gdb's x/: bytes, 16-, 32- or 64-bit words in hex, or C strings (s: non-ASCII bytes "
                        "as octal escapes)")
    d.set_defaults(func=_command("dump"))


def _add_record(sub) -> None:
    r = sub.add_parser("record", help="sample a live process into a JSON Lines recording, headless and zero-stop")
    r.add_argument("pid", type=types.target, metavar="PID|NAME", help=PID_HELP)
    r.add_argument("--out", required=True, metavar="FILE", help="the recording (created or truncated)")
    r.add_argument("--interval", type=types.positive_seconds, default=1.0, metavar="S",
                   help="seconds between samples (default 1)")
    r.add_argument("--duration", type=types.positive_seconds, default=None, metavar="S",
                   help="stop after S seconds (default: until the target exits or a signal)")
    r.add_argument("--max-bytes", type=types.byte_size, default=None, metavar="N",
                   help="cap each file at N bytes (64K, 100M...): stop there, or rotate with --rotate")
    r.add_argument("--rotate", type=types.rotations, default=0, metavar="K",
                   help="keep K (0..1000) full files FILE.1..FILE.K besides FILE (needs --max-bytes)")
    r.add_argument("--smaps-every", type=types.every, default=30, metavar="N",
                   help="read every mapping (full smaps) every N samples, deltas in between (default 30)")
    r.add_argument("--no-perf", action="store_true", help="do not run perf stat")
    r.add_argument("--no-engine", action="store_true", help="do not read the demo engine's stats block")
    r.set_defaults(func=_command("record"))


def _add_export(sub) -> None:
    x = sub.add_parser("export", help="serve Prometheus/OpenMetrics metrics of a live process, zero-stop")
    x.add_argument("pid", type=types.target, metavar="PID|NAME", help=PID_HELP)
    x.add_argument("--listen", type=types.listen, default=("127.0.0.1", 9464), metavar="HOST:PORT",
                   help="address to serve /metrics on (default 127.0.0.1:9464; 0.0.0.0:PORT for every interface)")
    x.add_argument("--interval", type=types.positive_seconds, default=1.0, metavar="S",
                   help="seconds between samples; scrapes read the latest sample (default 1)")
    x.add_argument("--smaps-every", type=types.every, default=30, metavar="N",
                   help="per-kind mapping sizes from full smaps every N samples (default 30)")
    x.add_argument("--no-perf", action="store_true", help="do not run perf stat")
    x.add_argument("--no-engine", action="store_true", help="do not read the demo engine's stats block")
    x.set_defaults(func=_command("export"))


def _add_demo(sub) -> None:
    dm = sub.add_parser("demo", help="the guided tour of the classic memory bugs on a demo engine it starts and stops")
    dm.add_argument("--script", action="store_true",
                    help="headless: run every chapter (bug on, observed, bug off), one line each; exit 0 if all observed")
    dm.add_argument("--chapter", type=types.chapter, default=None, metavar="NAME",
                    help="start at this chapter (with --script: run only it)")
    dm.add_argument("--refresh", type=types.positive_seconds, default=0.5, metavar="S",
                    help="seconds between samples in the TUI (default 0.5: a chapter's effect shows in seconds)")
    dm.set_defaults(func=_command("demo"))


def _add_allocs(sub) -> None:
    a = sub.add_parser("allocs", help="per-thread allocator calls through uprobes (opt-in, no ptrace); "
                                      "alarms for hot threads that allocate")
    a.add_argument("pid", type=types.target, metavar="PID|NAME", help=PID_HELP)
    a.add_argument("--duration", type=types.seconds, default=3.0, metavar="S", help="seconds to count after warm-up (3)")
    a.add_argument("--warmup", type=types.seconds, default=1.0, metavar="S",
                   help="seconds before counting starts; also picks --hot auto threads by CPU (1)")
    a.add_argument("--hot", type=types.hot_threads, default=None, metavar="TID,...|auto",
                   help="threads on the hot path: any allocator call there after warm-up raises an alarm")
    a.add_argument("--json", action="store_true", help="one JSON object on stdout")
    a.set_defaults(func=_command("allocs"))


def _add_watch(sub) -> None:
    w = sub.add_parser("watch", help="hardware watchpoint, headless: one block per hit (perf: no stop; gdb: "
                                     "stops the writing thread)")
    w.add_argument("pid", type=types.target, metavar="PID|NAME", help=PID_HELP)
    w.add_argument("target", metavar="SYMBOL[.field]|ADDR[:LEN]", type=types.watch_target,
                   help="a global symbol (.field for a member), or an address (0x hex or decimal, no leading zero) "
                        "with LEN 1, 2, 4 or 8 bytes (default 8)")
    w.add_argument("--access", choices=("write", "read", "rw"), default="write",
                   help="what triggers a hit (default write; read uses gdb: x86 has no read-only breakpoints)")
    w.add_argument("--count", type=types.hits, default=None, metavar="N", help="stop after N hits (1..10^9)")
    w.add_argument("--timeout", type=types.positive_seconds, default=None, metavar="S", help="stop after S seconds")
    w.add_argument("--via", choices=("perf", "gdb"), default=None,
                   help="perf (default when permitted: no ptrace, never stops the engine) or gdb (ptrace: stops "
                        "the writing thread at each hit)")
    w.add_argument("--max-rate", type=types.max_rate, default=None, metavar="HZ",
                   help="disarm above this many hits/s (perf default 2000, gdb default 20; 0 = no guard)")
    w.set_defaults(func=_command("watch"))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hftmem")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The whole `hftmem` parser; the order here is the order of `hftmem --help`."""
    p = _Parser(prog="hftmem", description="Zero-stop inspector for the memory of a running C++ trading engine.")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in (_add_engine, _add_attach, _add_replay, _add_scenario, _add_snapshot, _add_audit, _add_dump,
                _add_record, _add_export, _add_demo, _add_allocs, _add_watch):
        add(sub)
    return p


def _resolve_target(args: argparse.Namespace) -> None:
    """A PID|NAME argument becomes the one pid it names, with its start time (one /proc scan)."""
    if getattr(args, "pid", None) is None:
        return
    from hftmem_tui.sources.procfs.lookup import resolve

    ident = resolve(args.pid)
    args.pid, args.start_ticks = ident.pid, ident.start_ticks
    if args.command == "watch" and not types.looks_numeric(args.target):
        from hftmem_tui.commands.dump import check_gdb_path

        check_gdb_path(args.pid)  # a symbol is looked up by gdb on the executable's path


def _error_line(e: SourceError) -> str:
    """The message of ``e``; a refusal says what is really missing (caps, Yama, namespace, uid)."""
    if isinstance(e, AccessDenied) and e.pid and str(e).endswith(PERMISSION_HINT):
        from hftmem_tui.sources.procfs.access import explain_denial

        return str(e).removesuffix(PERMISSION_HINT) + explain_denial(e.pid)
    return str(e)


def never_raise_on_print() -> None:
    """Make stdout and stderr backslash-escape what their encoding cannot take (``LANG=C``, a strict
    ``PYTHONIOENCODING``) instead of raising UnicodeEncodeError.

    The net under ``visible()``, which every outside name goes through first (it shows an undecodable
    byte as ``\\xff``, where this would write ``\\udcff``). Streams without ``reconfigure`` are left alone.
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a closed or detached stream: nothing will be printed there
                pass


def main(argv: Sequence[str] | None = None) -> int:
    never_raise_on_print()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _resolve_target(args)
        return int(args.func(args) or 0)
    except SourceError as e:
        sys.stderr.write(f"hftmem: {visible(_error_line(e), newlines=True)}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `hftmem dump ... | head`: the reader went away; not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        # e.g. the engine binary exists but cannot be executed.
        sys.stderr.write(visible(f"hftmem: {e.strerror or e}{f': {e.filename}' if e.filename else ''}") + "\n")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
