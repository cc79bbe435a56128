"""`hftmem audit PID`: the readiness checks, as aligned lines or one JSON object."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from hftmem_tui.model.audit import evaluate, worst
from hftmem_tui.sources.readiness import read_facts, sample_history
from hftmem_tui.model.text import visible


def run(args: argparse.Namespace) -> int:
    """Sample ``--window`` seconds of history, evaluate the checks, print them.

    Raises the typed errors of the readers (NoSuchProcess, AccessDenied, SourceError).
    """
    history = sample_history(args.pid, args.window) if args.window > 0 else ()
    checks = evaluate(read_facts(args.pid, history))
    if args.json:
        json.dump({"pid": args.pid, "window_s": args.window, "worst": worst(checks),
                   "checks": [dataclasses.asdict(c) for c in checks]}, sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
        return 0
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"{c.label:<7}  {c.name:<{width}}  {visible(c.evidence)}")
        if c.advice and c.status != "pass":
            print(f"{'':<7}  {'':<{width}}  -> {visible(c.advice)}")
    return 0
