"""The `hftmem` command.

Every error a user can cause ends as one line on stderr (``hftmem: ...``) and a non-zero
exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .sources.engine import SCENARIOS, EngineControl, check_scenario, find_engine, start_engine
from .sources.errors import SourceError

EXIT_ERROR = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _pid(text: str) -> int:
    try:
        pid = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a pid: '{text}'") from None
    if pid <= 0:
        raise argparse.ArgumentTypeError(f"not a pid: '{text}'")
    return pid


def _scenario(text: str) -> str:
    try:
        return check_scenario(text)
    except SourceError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# --------------------------------------------------------------------------- commands


def cmd_engine(args: argparse.Namespace) -> int:
    binary = find_engine()
    if args.list_scenarios:
        os.execv(binary, [str(binary), "--list-scenarios"])
    if args.detach:
        proc = start_engine(args.scenario, spin=args.spin, tick_rate=args.tick_rate,
                            control=args.control, binary=binary)
        print(proc.pid, flush=True)
        return 0
    argv = [str(binary)]
    for s in args.scenario:
        argv += ["--scenario", s]
    if args.spin:
        argv.append("--spin")
    if args.tick_rate is not None:
        argv += ["--tick-rate", str(args.tick_rate)]
    if args.control:
        argv += ["--control", args.control]
    sys.stdout.flush()
    # Foreground: become the engine, so the pid it prints is this process and Ctrl-C reaches it directly.
    os.execv(binary, argv)
    return 0  # not reached


def cmd_scenario(args: argparse.Namespace) -> int:
    ctl = EngineControl(args.pid, name=args.control)
    for name in args.on:
        ctl.set_scenario(name, True)
    for name in args.off:
        ctl.set_scenario(name, False)
    st = ctl.status()
    active = ",".join(s for s in SCENARIOS if s in st.scenarios) or "-"
    print(f"pid={st.pid} scenarios={active} ticks={st.ticks} messages={st.messages}")
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hftmem", description="Zero-stop inspector for the memory of a running C++ trading engine.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    e = sub.add_parser("engine", help="run the native demo engine alone (prints its pid)")
    e.add_argument("--scenario", action="append", default=[], type=_scenario, metavar="NAME",
                   help="turn a bug scenario on at start (repeatable; see --list-scenarios)")
    e.add_argument("--detach", action="store_true", help="start in the background and print the pid alone")
    e.add_argument("--spin", action="store_true", help="run flat out instead of paced (uses two cores)")
    e.add_argument("--tick-rate", type=int, default=None, metavar="N", help="market-data ticks per second (paced mode)")
    e.add_argument("--control", default=None, metavar="NAME", help="abstract socket name (default hftmem-engine-PID)")
    e.add_argument("--list-scenarios", action="store_true", help="list the scenarios and exit")
    e.set_defaults(func=cmd_engine)

    s = sub.add_parser("scenario", help="switch scenarios of a running engine on or off, print its state")
    s.add_argument("pid", type=_pid)
    s.add_argument("--on", action="append", default=[], type=_scenario, metavar="NAME")
    s.add_argument("--off", action="append", default=[], type=_scenario, metavar="NAME")
    s.add_argument("--control", default=None, metavar="NAME", help="socket name if the engine was started with --control")
    s.set_defaults(func=cmd_scenario)

    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SourceError as e:
        sys.stderr.write(f"hftmem: {e}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        # e.g. the engine binary exists but cannot be executed.
        sys.stderr.write(f"hftmem: {e.strerror or e}{f': {e.filename}' if e.filename else ''}\n")
        return EXIT_ERROR
    except BrokenPipeError:
        # `hftmem dump ... | head`: the reader went away; not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
