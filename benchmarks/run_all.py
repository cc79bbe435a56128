"""hftmem against the tools users run today, measured side by side in ONE run, printed as one table.

    .venv/bin/python benchmarks/run_all.py [--fast] [--no-write]

1. Engine disturbance: the demo engine measures its own strategy loop (max and p99.9 gap
   between iterations, one value per 1-s window, in its stats block). We read the block
   zero-stop after each condition and take the median over the condition's whole windows:
   nothing attached; `hftmem record` at its default 1 s and at 10 Hz; `hftmem attach` (the TUI,
   on a 120x40 pty, as benchmarks/bench_tui.py runs it) at its default refresh and at 10 Hz;
   `htop -d 10 -p PID`; and a 1 Hz loop of
   what the seed workflow does by hand (`pmap -x PID`, `perf stat -p PID` for 200 ms,
   `gdb -batch -p PID -ex 'x/64xb &hftmem_engine_stats'`). Besides the gaps: how long the
   engine's strategy thread was *stopped* per second (schedstat: neither running nor waiting
   for a CPU, see tests/disturbance.py), whether a tracer was seen, the observer's own CPU, and
   for terminal programs the bytes per second they send to the terminal.
2. Sample cost: one full sample (everything `hftmem snapshot --no-perf` reads) vs `pmap -x`,
   at 100, 5,000 and 50,000 mappings (tests/fixtures/many_mappings.py).
3. Memory reads: process_vm_readv (zero-stop) vs gdb/MI `-data-read-memory-bytes` (attached:
   the target is stopped for the whole session) at 4 KiB, 1 MiB and 64 MiB.

Plain script rather than pyperf: the conditions are processes that run for seconds against
one engine, and what we compare is the engine's own measurement, not a function's time. The
table is written into BENCHMARKS.md between the run_all markers (unless --no-write).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_memory  # noqa: E402
import bench_procfs  # noqa: E402
from bench_tui import PtyProgram, cpu_seconds  # noqa: E402

from hftmem_tui.sources.engine import find_engine, start_engine  # noqa: E402
from hftmem_tui.sources.memory import read_memory  # noqa: E402
from hftmem_tui.feeds.engine_reader import read_engine_stats  # noqa: E402
from hftmem_tui.sources.symbols import SymbolTable  # noqa: E402
from tests.disturbance import EngineStopMonitor  # noqa: E402

BEGIN = "<!-- run_all:begin (written by benchmarks/run_all.py; rerun it rather than editing) -->"
END = "<!-- run_all:end -->"
HFTMEM = [sys.executable, "-m", "hftmem_tui.cli"]


# --------------------------------------------------------------------------- machine


def machine() -> list[str]:
    """The machine in a few lines: CPU model, cores, kernel, VM/container, memory, load."""
    lscpu = {}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines():
            k, _, v = line.partition(":")
            lscpu[k.strip()] = v.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    virt = lscpu.get("Hypervisor vendor")
    virt = f"VM ({virt}, {lscpu.get('Virtualization type', '?')} virtualization)" if virt else "bare metal (no hypervisor flag)"
    container = ""
    if Path("/.dockerenv").exists() or "docker" in Path("/proc/1/cgroup").read_text(errors="replace"):
        container = ", inside a Docker container"
    mem_kb = next((int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines()
                   if x.startswith("MemTotal:")), 0)
    load = os.getloadavg()
    return [
        f"- CPU: {lscpu.get('Model name', platform.processor() or '?')}, {os.cpu_count()} logical CPUs "
        f"({lscpu.get('Core(s) per socket', '?')} cores/socket, {lscpu.get('Thread(s) per core', '?')} thread/core)",
        f"- {virt}{container}; kernel {platform.release()}; {mem_kb / 1024 / 1024:.1f} GiB RAM",
        f"- Python {platform.python_version()}; load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
        f"(the machine is shared with other work: expect noise)",
    ]


# --------------------------------------------------------------------------- observers


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class Observer:
    """Something watching the engine for one condition. start()/stop(); cpu_s and bytes_out after stop."""

    name = "nothing attached"
    terminal = False
    startup_s = 1.0  # imports, symbols, perf start: not the steady state being measured

    def __init__(self) -> None:
        self.cpu_s: float | None = None
        self.bytes_out: int | None = None

    def start(self, pid: int, tmp: Path) -> None:
        pass

    def settle(self) -> None:
        """Called once the observer has started up: CPU is counted from here."""

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def stop(self) -> None:
        pass


class Nothing(Observer):
    pass


class Command(Observer):
    """A headless command (hftmem record) as a child; its CPU includes its perf child (reaped by it)."""

    def __init__(self, name: str, args: list[str]) -> None:
        super().__init__()
        self.name = name
        self.args = args

    def start(self, pid: int, tmp: Path) -> None:
        argv = [a.format(pid=pid, tmp=tmp) for a in self.args]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def settle(self) -> None:
        self.cpu0 = cpu_seconds(self.proc.pid)
        self.t0 = time.monotonic()

    def stop(self) -> None:
        cpu1 = cpu_seconds(self.proc.pid)
        self.cpu_s = (cpu1 - self.cpu0) / (time.monotonic() - self.t0)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class OnPty(Observer):
    """A terminal program on a 120x40 pty (bench_tui.PtyProgram): its output is drained and counted."""

    terminal = True
    startup_s = 3.0  # a Textual app takes a couple of seconds to import and draw on a loaded box

    def __init__(self, name: str, argv: list[str], quit_keys: str | None = "q") -> None:
        super().__init__()
        self.name = name
        self.argv = argv
        self.quit_keys = quit_keys

    def start(self, pid: int, tmp: Path) -> None:
        self.program = PtyProgram([a.format(pid=pid) for a in self.argv])

    def wait(self, seconds: float) -> None:
        self.program.pump(seconds)  # a terminal program blocks if nobody reads its output

    def settle(self) -> None:
        self.cpu0 = cpu_seconds(self.program.pid)
        self.bytes0 = self.program.bytes
        self.t0 = time.monotonic()

    def stop(self) -> None:
        dt = time.monotonic() - self.t0
        self.cpu_s = (cpu_seconds(self.program.pid) - self.cpu0) / dt
        self.bytes_out = int((self.program.bytes - self.bytes0) / dt)
        self.program.stop(self.quit_keys)


class ToolsLoop(Observer):
    """What the seed workflow does by hand, once a second: pmap, a short perf stat, a gdb read."""

    name = "1 Hz loop: pmap -x + perf stat + gdb -batch x/64xb"

    def start(self, pid: int, tmp: Path) -> None:
        self.done = threading.Event()
        self.rounds = 0
        perf = ["perf", "stat", "-p", str(pid), "-e", "task-clock,page-faults", "--", "sleep", "0.2"]
        gdb = ["gdb", "-batch", "-nx", "-p", str(pid), "-ex", "x/64xb &hftmem_engine_stats"]

        def loop() -> None:
            while not self.done.is_set():
                t = time.monotonic()
                for cmd in (["pmap", "-x", str(pid)], perf, gdb):
                    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
                self.rounds += 1
                self.done.wait(max(0.0, 1.0 - (time.monotonic() - t)))

        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()

    def settle(self) -> None:
        self.cpu0 = _children_cpu_s()
        self.t0 = time.monotonic()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=60)
        self.cpu_s = (_children_cpu_s() - self.cpu0) / (time.monotonic() - self.t0)


@dataclass
class Result:
    name: str
    windows: int
    max_gap_ms: float
    p999_gap_ms: float
    stopped_ms_per_s: float
    traced: bool
    cpu: float | None
    bytes_per_s: int | None
    notes: list[str] = field(default_factory=list)


def run_condition(pid: int, table: SymbolTable, obs: Observer, seconds: float, tmp: Path) -> Result:
    obs.start(pid, tmp)
    obs.wait(obs.startup_s)
    obs.settle()
    w0 = read_engine_stats(pid, table).window_index
    with EngineStopMonitor(pid, poll_s=0.005) as mon:
        obs.wait(seconds)
    stats = read_engine_stats(pid, table)
    obs.stop()
    # Window w0 was already running when we started: only later, complete windows count.
    ws = range(w0 + 1, stats.window_index)
    gaps = [stats.max_gap_hist[w % 64] / 1e6 for w in ws]
    p999 = [stats.p999_gap_hist[w % 64] / 1e6 for w in ws]
    return Result(obs.name, len(ws), statistics.median(gaps), statistics.median(p999),
                  max(0.0, mon.stopped_ms) / (mon.wall_ms / 1000), mon.tracers != {0}, obs.cpu_s, obs.bytes_out)


def disturbance(seconds: float, tmp: Path) -> list[Result]:
    observers: list[Observer] = [
        Nothing(),
        Command("hftmem record (default: 1 s)", [*HFTMEM, "record", "{pid}", "--out", "{tmp}/rec1.jsonl"]),
        Command("hftmem record --interval 0.1 (10 Hz)",
                [*HFTMEM, "record", "{pid}", "--out", "{tmp}/rec10.jsonl", "--interval", "0.1"]),
    ]
    observers += [
        OnPty("hftmem attach (TUI, default: 1 s)", [*HFTMEM, "attach", "{pid}"]),
        OnPty("hftmem attach --refresh 0.1 (TUI, 10 Hz)", [*HFTMEM, "attach", "{pid}", "--refresh", "0.1"]),
    ]
    if shutil.which("htop"):
        observers.append(OnPty("htop -d 10 -p PID (1 s)", ["htop", "-d", "10", "-p", "{pid}"]))
    observers += [ToolsLoop(), Nothing()]
    proc = start_engine()
    results = []
    try:
        with SymbolTable.for_pid(proc.pid) as table:
            time.sleep(2.0)  # the engine's first windows include its own start-up
            for obs in observers:
                print(f"  {obs.name} ({seconds:.0f} s)...", file=sys.stderr, flush=True)
                results.append(run_condition(proc.pid, table, obs, seconds, tmp))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # "nothing attached" ran first and last: one baseline from both.
    first, last = results[0], results.pop()
    results[0] = Result(first.name + " (before and after)", first.windows + last.windows,
                        statistics.median([first.max_gap_ms, last.max_gap_ms]),
                        statistics.median([first.p999_gap_ms, last.p999_gap_ms]),
                        (first.stopped_ms_per_s + last.stopped_ms_per_s) / 2, first.traced or last.traced, None, None)
    return results


# --------------------------------------------------------------------------- sample cost


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sample_cost(counts: tuple[int, ...], repeat: int) -> list[tuple[int, float, float]]:
    rows = []
    for n in counts:
        helper = bench_procfs.start_helper(n)
        try:
            maps = len(Path(f"/proc/{helper.pid}/maps").read_text().splitlines())
            ours = _median_time(lambda: bench_procfs._full_sample(helper.pid), repeat)
            pmap = statistics.median(bench_procfs.bench_pmap(1, helper.pid) for _ in range(repeat))
            rows.append((maps, ours, pmap))
        finally:
            helper.stdin.close()
            helper.wait(timeout=10)
    return rows


# --------------------------------------------------------------------------- memory reads

SIZES = (("4 KiB", 4 << 10), ("1 MiB", 1 << 20), ("64 MiB", 64 << 20))


def memory_reads(repeat: int) -> tuple[list[tuple[str, float, float]], float, float]:
    target, addr = bench_memory.start_target(64 << 20)
    victim, vaddr = bench_memory.start_target(64 << 20)
    rows = []
    try:
        for label, size in SIZES:
            assert len(read_memory(target.pid, addr, size)) == size
        ours = {label: _median_time(lambda s=size: read_memory(target.pid, addr, s), repeat)
                for label, size in SIZES}
        t = time.perf_counter()
        gdb = bench_memory.AttachedGdb(victim.pid)  # the victim is stopped from here until detach
        attach_s = time.perf_counter() - t
        try:
            for label, size in SIZES:
                reps = 1 if size > (4 << 20) else repeat  # 64 MiB over MI is tens of seconds
                theirs = _median_time(lambda s=size: gdb.read(vaddr, s), reps)
                rows.append((label, ours[label], theirs))
        finally:
            t = time.perf_counter()
            gdb.close()
            detach_s = time.perf_counter() - t
    finally:
        bench_memory.stop(target)
        bench_memory.stop(victim)
    return rows, attach_s, detach_s


# --------------------------------------------------------------------------- report


def _ms(v: float) -> str:
    return f"{v:.2f} ms" if v < 10 else f"{v:.0f} ms"


def _ratio(v: float, base: float) -> str:
    return f"{v / base:.2f}x" if base > 0 else "n/a"


def report(dist: list[Result], samples, reads, attach_s: float, detach_s: float, seconds: float,
           argv: list[str]) -> str:
    base = dist[0]
    lines = [*machine(), "", "Command: `.venv/bin/python benchmarks/run_all.py" + "".join(" " + a for a in argv) + "`, "
             f"run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
             f"### Engine disturbance ({seconds:.0f} s per condition, medians of the engine's own 1-s windows)", "",
             "| observer | windows | max loop gap | vs nothing | p99.9 loop gap | vs nothing | engine stopped | traced | observer CPU | terminal bytes/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in dist:
        cpu = "-" if r.cpu is None else f"{r.cpu * 100:.1f}% of a core"
        out = "-" if r.bytes_per_s is None else f"{r.bytes_per_s:,}"
        lines.append(f"| {r.name} | {r.windows} | {_ms(r.max_gap_ms)} | {_ratio(r.max_gap_ms, base.max_gap_ms)} | "
                     f"{r.p999_gap_ms * 1e6:,.0f} ns | {_ratio(r.p999_gap_ms, base.p999_gap_ms)} | "
                     f"{r.stopped_ms_per_s:.1f} ms/s | {'YES' if r.traced else 'no'} | {cpu} | {out} |")
    lines += ["", "### One full sample vs `pmap -x` (median)", "",
              "| mappings | hftmem full sample (status, stat, psutil, rollup, every mapping) | `pmap -x PID` | pmap / hftmem |",
              "|---|---|---|---|"]
    for maps, ours, pmap in samples:
        lines.append(f"| {maps:,} | {_ms(ours * 1000)} | {_ms(pmap * 1000)} | {pmap / ours:.2f}x |")
    lines += ["", "### Memory reads: process_vm_readv (no stop) vs gdb/MI `-data-read-memory-bytes` (attached)", "",
              "| size | hftmem `read_memory` | gdb read (target stopped) | gdb / hftmem |", "|---|---|---|---|"]
    for label, ours, theirs in reads:
        lines.append(f"| {label} | {_ms(ours * 1000)} | {_ms(theirs * 1000)} | {theirs / ours:,.0f}x |")
    lines += ["", f"gdb also stops the target for the whole session: attach took {attach_s * 1000:.0f} ms and "
              f"detach {detach_s * 1000:.0f} ms in this run; hftmem never stops it (the engine-stopped column above "
              "is the same evidence for the engine)."]
    return "\n".join(lines)


def write_markdown(path: Path, block: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = f"{BEGIN}\n{block}\n{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        head, sep, rest = text.partition("\n## ")
        intro = ("\n## hftmem vs the tools users run today (one run: `benchmarks/run_all.py`)\n\n"
                 "What each column means is in the docstring of `benchmarks/run_all.py`.\n\n")
        text = head.rstrip("\n") + "\n" + intro + section + "\n" + (sep + rest if sep else "")
    path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fast", action="store_true", help="short conditions and fewer repeats (< 5 min)")
    ap.add_argument("--seconds", type=float, default=None, help="seconds per disturbance condition (8 fast, 30 full)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args()
    seconds = args.seconds or (8.0 if args.fast else 30.0)
    repeat = 3 if args.fast else 7
    find_engine()  # build it now, not inside a timed condition
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hftmem-bench-") as tmp:
        print("engine disturbance:", file=sys.stderr, flush=True)
        dist = disturbance(seconds, Path(tmp))
    print("sample cost...", file=sys.stderr, flush=True)
    samples = sample_cost((100, 5_000, 50_000), repeat)
    print("memory reads...", file=sys.stderr, flush=True)
    reads, attach_s, detach_s = memory_reads(repeat)
    block = report(dist, samples, reads, attach_s, detach_s, seconds, sys.argv[1:])
    print(block)
    print(f"\n(total {time.monotonic() - t0:.0f} s)", file=sys.stderr)
    if not args.no_write:
        write_markdown(ROOT / "BENCHMARKS.md", block)
        print("written to BENCHMARKS.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
