"""`hftmem engine`: run the native demo engine, in the foreground (this process becomes it) or detached."""

from __future__ import annotations

import argparse
import os
import sys

from hftmem_tui.sources.engine import find_engine, start_engine


def run(args: argparse.Namespace) -> int:
    """List the scenarios, start the engine detached (print its pid), or exec into it.

    Raises SourceError when the engine cannot be found or built, OSError when it cannot be run.
    """
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
