"""What the watch pane costs hftmem (and the engine) while perf watchpoints are armed, in one run.

    .venv/bin/python benchmarks/bench_watch_pane.py [--seconds 10] [--warmup 5]

`hftmem attach` on the demo engine in a real 120x40 pseudo-terminal (bench_tui's PtyProgram),
on the watch pane (key 8): first with nothing armed, then a perf watchpoint on a field written
about once a second (window_index), then a second one on a field written about 1,000 times a
second (ticks). For each window: hftmem's CPU (utime+stime of it and its perf stat child, % of
one core) and the bytes per second it writes to the terminal. The engine's cost per hit is on
the pane itself (hits/s x the measured cost per hit); BENCHMARKS.md has the per-hit figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_tui import PtyProgram, measure  # noqa: E402

from hftmem_tui.sources.engine import find_engine  # noqa: E402



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per window (default 10)")
    ap.add_argument("--warmup", type=float, default=5.0)
    args = ap.parse_args()
    engine = subprocess.Popen([str(find_engine())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        tui = PtyProgram([sys.executable, "-m", "hftmem_tui.cli", "attach", str(engine.pid)])
        windows = [("8", "watch pane, nothing armed"),
                   ("hftmem_engine_stats.window_index", "+ perf watch, ~1 hit/s"),
                   ("hftmem_engine_stats.ticks", "+ perf watch, ~1,000 hits/s")]
        try:
            tui.pump(args.warmup)
            rows = []
            for keys, label in windows:
                if keys != "8":
                    tui.send("/")  # focuses the target input; enter arms (perf: the default backend as root)
                    tui.pump(0.5)
                    keys += "\r"
                tui.send(keys)
                tui.pump(3.0)  # arming (symbol lookup, cost calibration) is not steady state
                r = measure(tui, 0.0, [(None, args.seconds)])
                rows.append((label, r["cpu"], r["bytes"]))
        finally:
            tui.send("\x1b")  # leave the input, then quit: the exit hook disarms
            tui.stop("q")
        for label, cpu, bps in rows:
            print(f"hftmem attach, {label:<30} CPU {cpu:5.1f}% of a core  {bps / 1024:6.2f} KiB/s to the terminal")
    finally:
        engine.terminate()
        engine.wait(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
