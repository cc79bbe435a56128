"""`hftmem audit PID`: the readiness checks, as aligned lines or one JSON object.

The default window (2 s) is quick; the RSS growth check needs 20 s of VmRSS history after the
process's 30 s warm-up. When the history falls short, the advice says the exact ``--window``
that gives it on a re-run now (a young process needs the rest of its warm-up on top).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys

from hftmem_tui.model.audit import RSS_GROWTH, UNKNOWN, AuditConfig, Check, evaluate, worst
from hftmem_tui.sources.readiness import read_facts, sample_history
from hftmem_tui.textsafe import visible

RSS_HISTORY_S = 20.0  # model.trend.fit_leak's min_span_s: the shortest span it fits a slope on
MAX_WINDOW_S = 3600.0


def window_needed(age_s: float | None, cfg: AuditConfig = AuditConfig()) -> float | None:
    """The ``--window`` that gives the RSS growth check its history when started on a process
    ``age_s`` seconds old: 20 s after the warm-up, plus a second of margin. None if age unknown."""
    if age_s is None:
        return None
    return float(math.ceil(RSS_HISTORY_S + max(0.0, cfg.warmup_s - age_s) + 1.0))


def _with_wait_advice(check: Check, pid: int, age_s: float | None) -> Check:
    if check.name != RSS_GROWTH or check.status != UNKNOWN:
        return check
    need = window_needed(age_s)
    if need is None:
        return check
    age = f"the process is {age_s:.0f} s old; " if age_s is not None else ""
    return dataclasses.replace(check, advice=f"{age}run `hftmem audit {pid} --window {need:.0f}` "
                                             f"({need:.0f} s of sampling) for a verdict")


def run(args: argparse.Namespace) -> int:
    """Sample ``--window`` seconds of history, evaluate the checks, print them.

    Raises the typed errors of the readers (NoSuchProcess, AccessDenied, SourceError).
    """
    history = sample_history(args.pid, args.window) if args.window > 0 else ()
    facts = read_facts(args.pid, history)
    checks = tuple(_with_wait_advice(c, args.pid, facts.age_s) for c in evaluate(facts))
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
