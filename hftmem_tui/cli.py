"""The `hftmem` command.

Every error a user can cause ends as one line on stderr (``hftmem: ...``) and a non-zero
exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from collections.abc import Sequence

from hftmem_tui.sources.engine import SCENARIOS, EngineControl, check_scenario, find_engine, start_engine
from hftmem_tui.errors import SourceError

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


def cmd_attach(args: argparse.Namespace) -> int:
    from hftmem_tui.commands.attach import run_attach

    return run_attach(args.pid, refresh_s=args.refresh, graph_style=args.graph, perf=not args.no_perf,
                      allocators_file=args.allocators)


def cmd_replay(args: argparse.Namespace) -> int:
    from hftmem_tui.ui.replay import run_replay

    return run_replay(args.file, at=args.at, speed=args.speed, play=args.play, graph_style=args.graph)


def _speed(text: str) -> float:
    try:
        v = float(text.lower().rstrip("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a playback speed (e.g. 4 or 0.5)") from None
    if not 0.01 <= v <= 1000:
        raise argparse.ArgumentTypeError("playback speed must be between 0.01 and 1000")
    return v


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


def cmd_snapshot(args: argparse.Namespace) -> int:
    from hftmem_tui.commands import snapshot

    return snapshot.run(args)


def cmd_audit(args: argparse.Namespace) -> int:
    from hftmem_tui.model.audit import evaluate, worst
    from hftmem_tui.sources.readiness import read_facts, sample_history

    history = sample_history(args.pid, args.window) if args.window > 0 else ()
    checks = evaluate(read_facts(args.pid, history))
    if args.json:
        json.dump({"pid": args.pid, "window_s": args.window, "worst": worst(checks),
                   "checks": [dataclasses.asdict(c) for c in checks]}, sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
        return 0
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"{c.label:<7}  {c.name:<{width}}  {c.evidence}")
        if c.advice and c.status != "pass":
            print(f"{'':<7}  {'':<{width}}  -> {c.advice}")
    return 0


def _window(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: '{text}'") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"window must be 0..3600 seconds, got '{text}'")
    return value


_ADDRESS_RE = re.compile(r"\s*(?:0[xX]([0-9a-fA-F]+)|([0-9]+))\s*", re.ASCII)


def _address(text: str) -> int | None:
    """0x-prefixed hex or plain decimal (ASCII digits only): an address; anything else, "-5"
    included, is a symbol expression (and refused by its guard with a reason)."""
    m = _ADDRESS_RE.fullmatch(text)
    if m is None:
        return None
    return int(m.group(1), 16) if m.group(1) is not None else int(m.group(2), 10)


def cmd_dump(args: argparse.Namespace) -> int:
    from hftmem_tui.sources import procfs
    from hftmem_tui.sources.memory import format_x, read_memory
    from hftmem_tui.sources.symbols import SymbolTable, check_symbol_expr

    procfs.check_target(args.pid)
    address = _address(args.what)
    label = None
    length = args.len
    if address is None:
        check_symbol_expr(args.what)  # refuse anything but a plain symbol path before gdb sees it
        with SymbolTable.for_pid(args.pid) as table:
            resolved = table.resolve_expr(args.what)
            address = table.runtime_address(resolved, args.pid)
            label = (resolved.symbol.name, address - resolved.offset)
            length = length or resolved.size
    length = length or 64
    data = read_memory(args.pid, address, length)
    for line in format_x(data, address, args.format, symbol=label):
        print(line)
    return 0


def _length(text: str) -> int:
    n = _address(text)
    if n is None or not 0 < n <= 256 * 1024 * 1024:
        raise argparse.ArgumentTypeError(f"length must be 1..268435456 bytes, got '{text}'")
    return n


def _positive_seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: '{text}'") from None
    if not 0.05 <= v <= 30 * 86400:
        raise argparse.ArgumentTypeError(f"seconds must be 0.05..2592000 (30 days), got '{text}'")
    return v


def _count(text: str) -> int:
    try:
        v = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a count: '{text}'") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got '{text}'")
    return v


_SIZE_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _bytes(text: str) -> int:
    """1048576, 64K, 100M, 2G (binary units)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in ("K", "M", "G") else ""
    try:
        v = int(float(t[: len(t) - len(unit)]) * _SIZE_SUFFIX[unit])
    except (ValueError, OverflowError):  # "abc", "nan", "inf"
        raise argparse.ArgumentTypeError(f"not a size: '{text}' (e.g. 1048576, 64K, 100M, 2G)") from None
    if v < 4096:
        raise argparse.ArgumentTypeError(f"size must be at least 4096 bytes, got '{text}'")
    return v


def cmd_record(args: argparse.Namespace) -> int:
    from hftmem_tui.commands import record

    return record.run(args)


def _listen(text: str) -> tuple[str, int]:
    """HOST:PORT, [V6]:PORT, or PORT alone (loopback). All interfaces must be named (0.0.0.0, [::])."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    elif not host:
        raise argparse.ArgumentTypeError(
            f"'{text}': name the address to listen on (127.0.0.1:{port}, or 0.0.0.0:{port} for every interface)")
    host = host.removeprefix("[").removesuffix("]")
    try:
        n = int(port, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: '{port}' in '{text}'") from None
    if not 0 < n < 65536:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {n}")
    return host, n


def cmd_export(args: argparse.Namespace) -> int:
    from hftmem_tui.commands import export

    return export.run(args)


def _hot_threads(text: str) -> list[int] | str:
    if text == "auto":
        return "auto"
    try:
        tids = [int(t, 10) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hot takes TID,TID,... or auto, not '{text}'") from None
    if not tids or any(t <= 0 for t in tids):
        raise argparse.ArgumentTypeError(f"--hot takes TID,TID,... or auto, not '{text}'")
    return tids


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: '{text}'") from None
    if not 0 < v <= 3600:
        raise argparse.ArgumentTypeError(f"seconds must be in (0, 3600], got '{text}'")
    return v


def cmd_allocs(args: argparse.Namespace) -> int:
    """Per-thread allocator calls through uprobes; alarms for hot threads that allocate after warm-up."""
    import time

    from hftmem_tui.model.allocalarm import build_report, cpu_fractions, suggest_hot, window
    from hftmem_tui.sources import procfs
    from hftmem_tui.sources.perf.uprobes import AllocProbes, cost_per_call, thread_cpu_ticks

    procfs.check_target(args.pid)

    from hftmem_tui.sources.shutdown import unwind_on_hangup

    clk = os.sysconf("SC_CLK_TCK")
    # SIGTERM/SIGHUP unwind like an exception, so the probes are removed on the way out.
    with unwind_on_hangup():
        with AllocProbes(args.pid) as probes:
            cost = cost_per_call()
            cpu0, t0 = thread_cpu_ticks(args.pid), time.monotonic()
            _wait(probes, args.warmup)
            cpu1, t1 = thread_cpu_ticks(args.pid), time.monotonic()
            warm_cpu = cpu_fractions(cpu0, cpu1, t1 - t0, clk)
            if args.hot == "auto":
                hot = suggest_hot(warm_cpu)
            else:
                hot = args.hot or []
                unknown = [t for t in hot if t not in cpu1]
                if unknown:
                    raise SourceError(f"not a thread of process {args.pid}: {','.join(map(str, unknown))} "
                                      f"(threads: {','.join(map(str, sorted(cpu1)))})")
            before, t1 = probes.counts(), time.monotonic()
            _wait(probes, args.duration)
            after, t2, cpu2 = probes.counts(), time.monotonic(), thread_cpu_ticks(args.pid)
            report = build_report(window(before, after), probes.thread_names, t2 - t1, hot,
                                  cpu=cpu_fractions(cpu1, cpu2, t2 - t1, clk), cost_per_call_s=cost,
                                  notes=tuple(probes.notes))
            offenders = probes.sample_offenders([a.tid for a in report.alarms]) if report.alarms else []
            specs = probes.specs
    if args.json:
        json.dump(_allocs_json(args, report, offenders, specs, warm_cpu), sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
        return 0
    _print_allocs(args, report, offenders, specs, warm_cpu)
    return 0


def _wait(probes, seconds: float) -> None:
    import time

    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(0.25, left))
        probes.refresh_threads()  # threads created meanwhile get counters too


def _allocs_json(args, report, offenders, specs, warm_cpu) -> dict:
    return {
        "pid": args.pid, "seconds": report.seconds, "warmup_s": args.warmup, "hot": list(report.hot),
        "threads": [{"tid": t.tid, "name": t.name, "cpu_fraction": t.cpu_fraction, "hot": t.hot,
                     "calls": t.calls, "rate_hz": t.rate_hz} for t in report.threads],
        "alarms": [{"tid": a.tid, "name": a.name, "calls": a.calls, "rate_hz": a.rate_hz,
                    "offenders": [{"function": o.function, "count": o.count, "frames": [str(f) for f in o.frames]}
                                  for o in offenders if o.tid == a.tid]} for a in report.alarms],
        "calls_per_s": report.calls_per_s, "cost_per_call_s": report.cost_per_call_s,
        "cost_fraction": report.cost_fraction, "notes": list(report.notes),
        "probes": [{"function": s.function, "symbol": s.symbol, "path": s.path, "where": s.where} for s in specs],
        "warmup_cpu_fraction": {str(k): v for k, v in warm_cpu.items()},
    }  # fmt: skip


def _print_allocs(args, report, offenders, specs, warm_cpu) -> None:
    from hftmem_tui.model.allocalarm import suggest_hot
    from hftmem_tui.sources.perf.uprobes import ALLOC_FUNCTIONS

    where = sorted({f"{s.where} ({os.path.basename(s.path)})" for s in specs})
    print(f"allocator calls per second in process {args.pid} over {report.seconds:.1f} s after a "
          f"{args.warmup:g} s warm-up (uprobes on {', '.join(where)}; no ptrace)")
    shown = [f for f in ALLOC_FUNCTIONS if any(t.calls.get(f) for t in report.threads)] or ["malloc", "free"]
    print(f"{'TID':>8}  {'THREAD':<16} {'CPU':>5}  " + "  ".join(f"{f + '/s':>10}" for f in shown) + "  HOT")
    for t in report.threads:
        cpu = f"{t.cpu_fraction * 100:.0f}%" if t.cpu_fraction is not None else "?"
        print(f"{t.tid:>8}  {t.name[:16]:<16} {cpu:>5}  " + "  ".join(f"{t.rate(f):>10,.0f}" for f in shown)
              + ("    *" if t.hot else ""))
    for note in report.notes:
        print(f"note: {note}")
    if report.cost_per_call_s is not None:
        print(f"probe cost: {report.calls_per_s:,.0f} calls/s x {report.cost_per_call_s * 1e6:.1f} us per call = "
              f"{report.cost_fraction * 100:.1f}% of a core (measured on this machine)")
    if not report.hot:
        busiest = suggest_hot(warm_cpu)
        names = {t.tid: t.name for t in report.threads}
        if busiest:
            print("busiest threads (hot-path candidates): " + ", ".join(
                f"{t} {names.get(t, '?')} ({warm_cpu.get(t, 0) * 100:.0f}% of a core)" for t in busiest)
                + f"; mark them with --hot auto or --hot {','.join(map(str, busiest))}")
        return
    if not report.alarms:
        print(f"no alarm: hot threads {', '.join(str(t) for t in report.hot)} made no allocator call after warm-up")
        return
    for alarm in report.alarms:
        print(alarm)
        mine = sorted((o for o in offenders if o.tid == alarm.tid), key=lambda o: -o.count)
        if mine:
            print("  first offenders (call chains sampled briefly on this thread):")
        for o in mine:
            print(f"    {o.function} x{o.count}")
            for i, f in enumerate(o.frames[:12]):
                print(f"      #{i} {f}")


def cmd_watch(args: argparse.Namespace) -> int:
    """A hardware watchpoint, headless: perf by default (no stop), gdb on request (stop and inspect)."""
    from hftmem_tui.commands.watch import run_watch

    return run_watch(args.pid, args.target, access=args.access, count=args.count, timeout=args.timeout,
                     via=args.via, max_rate=args.max_rate)

def _chapter(text: str) -> str:
    from hftmem_tui.demo.chapters import find_chapter

    try:
        return find_chapter(text).name
    except KeyError as e:
        raise argparse.ArgumentTypeError(e.args[0]) from None


def cmd_demo(args: argparse.Namespace) -> int:
    """The guided tour: headless with --script (CI, slow links), else the TUI with a tour panel."""
    from hftmem_tui.demo.chapters import CHAPTERS, find_chapter

    if args.script:
        from hftmem_tui.demo.script import run_script

        chapters = [find_chapter(args.chapter)] if args.chapter else list(CHAPTERS)
        return run_script(chapters, out=lambda line: print(line, flush=True))
    from hftmem_tui.ui.demo_app import run_tour

    return run_tour(start=args.chapter, refresh_s=args.refresh)


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

    at = sub.add_parser("attach", help="the live TUI on a running process, zero-stop")
    at.add_argument("pid", type=_pid)
    at.add_argument("--refresh", type=_positive_seconds, default=1.0, metavar="S",
                    help="seconds between samples (default 1: low cost to the target and to the terminal)")
    at.add_argument("--graph", choices=("braille", "block"), default="braille",
                    help="graph characters (block for fonts without braille)")
    at.add_argument("--no-perf", action="store_true", help="do not run perf stat")
    at.add_argument("--allocators", default=None, metavar="FILE",
                    help="TOML file describing the engine's allocator globals (see examples/allocators.toml)")
    at.set_defaults(func=cmd_attach)

    rp = sub.add_parser("replay", help="the attach TUI, offline, on a `hftmem record` file, with a time cursor")
    rp.add_argument("file", metavar="FILE")
    rp.add_argument("--at", default="end", metavar="WHEN",
                    help="where the cursor starts: end (default: the whole recording loaded), start, "
                         "@SECONDS from the start, or a clock time HH:MM[:SS]")
    rp.add_argument("--speed", type=_speed, default=1.0, metavar="N", help="playback speed, N x recorded time")
    rp.add_argument("--play", action="store_true", help="start playing at once (from the start if at the end)")
    rp.add_argument("--graph", choices=("braille", "block"), default="braille",
                    help="graph characters (block for fonts without braille)")
    rp.set_defaults(func=cmd_replay)

    s = sub.add_parser("scenario", help="switch scenarios of a running engine on or off, print its state")
    s.add_argument("pid", type=_pid)
    s.add_argument("--on", action="append", default=[], type=_scenario, metavar="NAME")
    s.add_argument("--off", action="append", default=[], type=_scenario, metavar="NAME")
    s.add_argument("--control", default=None, metavar="NAME", help="socket name if the engine was started with --control")
    s.set_defaults(func=cmd_scenario)

    sn = sub.add_parser("snapshot", help="one sample of every source, headless and zero-stop")
    sn.add_argument("pid", type=_pid)
    sn.add_argument("--json", action="store_true", help="one JSON object on stdout")
    sn.add_argument("--no-perf", action="store_true", help="skip the 200 ms perf stat sample")
    sn.add_argument("--allocators", default=None, metavar="FILE",
                    help="TOML file describing the engine's allocator globals (see examples/allocators.toml)")
    sn.set_defaults(func=cmd_snapshot)

    a = sub.add_parser("audit", help="readiness checks (mlock, huge pages, NUMA, swap, faults, growth, affinity, policy)")
    a.add_argument("pid", type=_pid)
    a.add_argument("--json", action="store_true", help="one JSON object on stdout")
    a.add_argument("--window", type=_window, default=2.0, metavar="S",
                   help="seconds of VmRSS/fault history to take first (default 2; RSS growth needs 20+)")
    a.set_defaults(func=cmd_audit)

    d = sub.add_parser("dump", help="memory as gdb x/ lines, read without stopping the target")
    d.add_argument("pid", type=_pid)
    d.add_argument("what", metavar="ADDR|SYMBOL[.field]")
    d.add_argument("--len", type=_length, default=None, metavar="N",
                   help="bytes to read (default: the symbol's size, or 64 for an address)")
    d.add_argument("--format", choices=("xb", "xh", "xw", "xg", "s"), default="xb")
    d.set_defaults(func=cmd_dump)

    r = sub.add_parser("record", help="sample a live process into a JSON Lines recording, headless and zero-stop")
    r.add_argument("pid", type=_pid)
    r.add_argument("--out", required=True, metavar="FILE", help="the recording (created or truncated)")
    r.add_argument("--interval", type=_positive_seconds, default=1.0, metavar="S",
                   help="seconds between samples (default 1)")
    r.add_argument("--duration", type=_positive_seconds, default=None, metavar="S",
                   help="stop after S seconds (default: until the target exits or a signal)")
    r.add_argument("--max-bytes", type=_bytes, default=None, metavar="N",
                   help="cap each file at N bytes (64K, 100M...): stop there, or rotate with --rotate")
    r.add_argument("--rotate", type=_count, default=0, metavar="K",
                   help="keep K full files FILE.1..FILE.K besides FILE (needs --max-bytes)")
    r.add_argument("--smaps-every", type=_count, default=30, metavar="N",
                   help="read every mapping (full smaps) every N samples, deltas in between (default 30)")
    r.add_argument("--no-perf", action="store_true", help="do not run perf stat")
    r.add_argument("--no-engine", action="store_true", help="do not read the demo engine's stats block")
    r.set_defaults(func=cmd_record)

    x = sub.add_parser("export", help="serve Prometheus/OpenMetrics metrics of a live process, zero-stop")
    x.add_argument("pid", type=_pid)
    x.add_argument("--listen", type=_listen, default=("127.0.0.1", 9464), metavar="HOST:PORT",
                   help="address to serve /metrics on (default 127.0.0.1:9464; 0.0.0.0:PORT for every interface)")
    x.add_argument("--interval", type=_positive_seconds, default=1.0, metavar="S",
                   help="seconds between samples; scrapes read the latest sample (default 1)")
    x.add_argument("--smaps-every", type=_count, default=30, metavar="N",
                   help="per-kind mapping sizes from full smaps every N samples (default 30)")
    x.add_argument("--no-perf", action="store_true", help="do not run perf stat")
    x.add_argument("--no-engine", action="store_true", help="do not read the demo engine's stats block")
    x.set_defaults(func=cmd_export)

    dm = sub.add_parser("demo", help="the guided tour of the classic memory bugs on a demo engine it starts and stops")
    dm.add_argument("--script", action="store_true",
                    help="headless: run every chapter (bug on, observed, bug off), one line each; exit 0 if all observed")
    dm.add_argument("--chapter", type=_chapter, default=None, metavar="NAME",
                    help="start at this chapter (with --script: run only it)")
    dm.add_argument("--refresh", type=_positive_seconds, default=0.5, metavar="S",
                    help="seconds between samples in the TUI (default 0.5: a chapter's effect shows in seconds)")
    dm.set_defaults(func=cmd_demo)

    a = sub.add_parser("allocs", help="per-thread allocator calls through uprobes (opt-in, no ptrace); "
                                      "alarms for hot threads that allocate")
    a.add_argument("pid", type=_pid)
    a.add_argument("--duration", type=_seconds, default=3.0, metavar="S", help="seconds to count after warm-up (3)")
    a.add_argument("--warmup", type=_seconds, default=1.0, metavar="S",
                   help="seconds before counting starts; also picks --hot auto threads by CPU (1)")
    a.add_argument("--hot", type=_hot_threads, default=None, metavar="TID,...|auto",
                   help="threads on the hot path: any allocator call there after warm-up raises an alarm")
    a.add_argument("--json", action="store_true", help="one JSON object on stdout")
    a.set_defaults(func=cmd_allocs)

    w = sub.add_parser("watch", help="hardware watchpoint, headless: one line per hit (perf: no stop; gdb: stops "
                                     "the writing thread)")
    w.add_argument("pid", type=_pid)
    w.add_argument("target", metavar="SYMBOL[.field]|ADDR[:LEN]")
    w.add_argument("--access", choices=("write", "read", "rw"), default="write",
                   help="what triggers a hit (default write; read uses gdb: x86 has no read-only breakpoints)")
    w.add_argument("--count", type=_count, default=None, metavar="N", help="stop after N hits")
    w.add_argument("--timeout", type=_positive_seconds, default=None, metavar="S", help="stop after S seconds")
    w.add_argument("--via", choices=("perf", "gdb"), default=None,
                   help="perf (default when permitted: no ptrace, never stops the engine) or gdb (ptrace: stops "
                        "the writing thread at each hit)")
    w.add_argument("--max-rate", type=float, default=None, metavar="HZ",
                   help="disarm above this many hits/s (perf default 2000, gdb default 20; 0 = no guard)")
    w.set_defaults(func=cmd_watch)
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
    except BrokenPipeError:
        # `hftmem dump ... | head`: the reader went away; not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        # e.g. the engine binary exists but cannot be executed.
        sys.stderr.write(f"hftmem: {e.strerror or e}{f': {e.filename}' if e.filename else ''}\n")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
