"""What `hftmem attach` costs at its default refresh, beside htop at the same refresh, in one run.

    .venv/bin/python benchmarks/bench_tui.py [--per-pane 8] [--warmup 5] [--refresh 1]

Both run on the demo engine in a real pseudo-terminal of 120x40 (the bytes each writes to the
terminal are counted at the master side). The TUI visits every pane in turn (keys 1-7,
``--per-pane`` seconds each, after ``--warmup`` seconds), so every pane is live for part of
the window; its CPU includes its perf stat child. htop runs as ``htop -p PID -d 10*refresh``.
CPU is utime+stime from /proc (all threads, children reaped or alive), as % of one core.
Also reported: the sampler's own cost per sample (LiveSampler.sample wall time, as the TUI
calls it: status/stat/psutil every time, smaps_rollup, full smaps every 5th, engine block).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hftmem_tui.sources.engine import find_engine  # noqa: E402
from hftmem_tui.feeds.sampler import LiveSampler  # noqa: E402
from hftmem_tui.commands.attach import SMAPS_EVERY  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
COLS, ROWS = 120, 40


def cpu_seconds(pid: int) -> float:
    """utime+stime of pid and of its live children (perf stat under the TUI), in seconds."""
    total = 0.0
    pids = [pid]
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            children = Path(f"/proc/{pid}/task/{tid}/children")
            if children.exists():
                pids += [int(c) for c in children.read_text().split()]
    except FileNotFoundError:
        return 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


class PtyProgram:
    """A program on a pty of COLSxROWS; ``pump`` drains its output and counts the bytes."""

    def __init__(self, argv: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
            env["TERM"] = "xterm-256color"
            os.execvpe(argv[0], argv, env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        os.kill(self.pid, signal.SIGWINCH)
        self.bytes = 0

    def pump(self, seconds: float) -> int:
        """Read everything the program writes for ``seconds``; returns the bytes read."""
        got = 0
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    break
                got += len(data)
        self.bytes += got
        return got

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def stop(self, quit_keys: str | None) -> None:
        if quit_keys:
            self.send(quit_keys)
            self.pump(1.0)
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        os.close(self.fd)


def measure(program: PtyProgram, warmup: float, windows: list[tuple[str | None, float]]) -> dict:
    program.pump(warmup)
    results = []
    for keys, seconds in windows:
        if keys:
            program.send(keys)
            program.pump(0.3)  # the pane switch itself is not steady state
        c0, t0 = cpu_seconds(program.pid), time.monotonic()
        n = program.pump(seconds)
        c1, t1 = cpu_seconds(program.pid), time.monotonic()
        results.append((keys, (c1 - c0) / (t1 - t0) * 100, n / (t1 - t0)))
    return {"windows": results,
            "cpu": statistics.mean(r[1] for r in results), "bytes": statistics.mean(r[2] for r in results)}


def sample_cost(pid: int, refresh: float, n: int = 40) -> tuple[float, float, float]:
    sampler = LiveSampler(pid, interval_s=refresh, smaps_every=SMAPS_EVERY, perf=False)
    sampler.start()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        sampler.sample()
        times.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.02)
    sampler.close()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)], statistics.mean(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refresh", type=float, default=1.0, help="seconds between refreshes for both (default 1)")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--per-pane", type=float, default=8.0)
    ap.add_argument("--panes", default="1234567", help="which panes to visit, by key (default all: 1234567)")
    ap.add_argument("--no-htop", action="store_true", help="skip the htop comparison")
    args = ap.parse_args()
    engine = subprocess.Popen([str(find_engine())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        med, p95, mean = sample_cost(engine.pid, args.refresh)
        print(f"sample cost (LiveSampler.sample, smaps every {SMAPS_EVERY}): median {med:.2f} ms, "
              f"p95 {p95:.2f} ms, mean {mean:.2f} ms")
        tui = PtyProgram([sys.executable, "-m", "hftmem_tui.cli", "attach", str(engine.pid),
                          "--refresh", str(args.refresh)])
        panes = [(k, args.per_pane) for k in args.panes]
        try:
            r = measure(tui, args.warmup, panes)
        finally:
            tui.stop("q")
        names = ("overview", "mappings", "perf", "allocators", "latency", "memory", "audit")
        for keys, cpu, bps in r["windows"]:
            name = names[int(keys) - 1]
            print(f"  hftmem attach, pane {keys} {name:<10} CPU {cpu:5.2f}% of a core  {bps / 1024:6.2f} KiB/s to the terminal")
        print(f"hftmem attach --refresh {args.refresh:g}: CPU {r['cpu']:.2f}% of a core, "
              f"{r['bytes'] / 1024:.2f} KiB/s to the terminal (mean over the panes)")
        if args.no_htop:
            pass
        elif shutil.which("htop"):
            htop = PtyProgram(["htop", "-p", str(engine.pid), "-d", str(max(1, int(round(args.refresh * 10))))])
            try:
                h = measure(htop, args.warmup, [(None, args.per_pane * 7)])
            finally:
                htop.stop("q")
            print(f"htop -p PID -d {int(round(args.refresh * 10))}: CPU {h['cpu']:.2f}% of a core, "
                  f"{h['bytes'] / 1024:.2f} KiB/s to the terminal")
        else:
            print("htop: not installed (apt-get install htop)")
    finally:
        engine.terminate()
        engine.wait(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
