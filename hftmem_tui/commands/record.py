"""`hftmem record`: sample a live process at a steady pace into a recording, headless.

The loop owns pacing, signals, the size cap and rotation; reading is feeds.sampler's job and
the file format is feeds.recording's. SIGTERM/SIGINT/SIGHUP end the recording cleanly (end
line, perf stopped); SIGKILL loses at most the line being written, and perf dies with us.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass

from hftmem_tui.feeds.recording_writer import (
    RecordingWriter,
    SampleEncoder,
    encode_line,
    make_header,
)
from hftmem_tui.feeds.sampler import LiveSampler, ProcessReplaced, TargetGone
from hftmem_tui.sources.shutdown import StopFlag, paced, stop_on_signals
from hftmem_tui.textsafe import visible


@dataclass(frozen=True, slots=True)
class RecordOptions:
    interval_s: float = 1.0
    duration_s: float | None = None
    max_bytes: int | None = None
    rotate: int = 0
    smaps_every: int = 30
    rollup_every: int = 1
    budget: float = 0.01
    perf: bool = True
    engine: bool = True


@dataclass(frozen=True, slots=True)
class RecordResult:
    reason: str  # "target exited" | "process N was replaced by ..." | "duration reached" | "size cap" | "stopped by SIGTERM"...
    samples: int
    parts: int


def _say_end(log, reason: str, pid: int, out: str, samples: int, opts: RecordOptions) -> None:
    """The one stderr line for an end the user did not ask for (a stop on request says nothing)."""
    if reason == "target exited":
        log(f"target {pid} exited; recorded {samples} samples to {out}")
    elif reason.startswith(f"process {pid} was replaced"):
        log(f"{reason}: recording stops; recorded {samples} samples of the original to {out}")
    elif reason == "size cap":
        log(f"{out} reached --max-bytes {opts.max_bytes}; recorded {samples} samples "
            f"(add --rotate K to keep recording)")


def record(pid: int, out: str, opts: RecordOptions, *, stop: threading.Event | None = None,
           log=None, progress=lambda _text: None) -> RecordResult:
    """Record ``pid`` into ``out`` until the target exits, the duration passes, the size cap is
    hit, or ``stop`` is set (signals set it when called from the main thread).

    Raises the typed errors of LiveSampler.start (bad target) and RecordingError (bad path, disk
    full); in every case the file ends well formed up to its last complete line. ``progress``
    gets a status line after each sample (the CLI shows it on a terminal only).
    """
    log = log or (lambda line: sys.stderr.write(f"hftmem: {visible(line)}\n"))  # paths and names are outside text
    with stop_on_signals(stop) as stop:  # SIGTERM/SIGINT/SIGHUP end it cleanly (from the main thread)
        return _record(pid, out, opts, stop, log, progress)


def _record(pid: int, out: str, opts: RecordOptions, stop: threading.Event, log, progress) -> RecordResult:
    writer = RecordingWriter(out, max_bytes=opts.max_bytes, rotate=opts.rotate)
    sampler = LiveSampler(pid, interval_s=opts.interval_s, smaps_every=opts.smaps_every,
                          rollup_every=opts.rollup_every, budget=opts.budget, perf=opts.perf,
                          engine=opts.engine)
    reason = "stopped"
    try:
        from hftmem_tui.sources import procfs

        procfs.check_target(pid)  # a bad pid fails before the output file is touched
        writer.create()  # a bad path fails before perf or gdb start
        info = sampler.start()

        def header() -> dict:
            return make_header(info, interval_s=opts.interval_s, smaps_every=opts.smaps_every,
                               rollup_every=opts.rollup_every, budget=opts.budget,
                               perf_interval_ms=sampler.perf.interval_ms if sampler.perf else None,
                               notes=sampler.notes)

        for note in sampler.notes:  # perf refused, not an engine...: the recording goes on without
            log(note)
        writer.open(header())
        encoder = SampleEncoder()
        t0 = time.monotonic()
        deadline = t0 + opts.duration_s if opts.duration_s else None
        for _ in paced(opts.interval_s, stop, until=deadline):
            try:
                s = sampler.sample()
            except ProcessReplaced as e:  # the pid names a newcomer: nothing of it is written
                reason = str(e)
                break
            except TargetGone:
                reason = "target exited"
                break
            for note in sampler.fresh_notes(s):  # perf killed, the target exec'd...: said once
                log(note)
            line = encode_line(encoder.encode(s, first_in_file=writer.samples_in_file == 0))
            if not writer.fits(line):
                if opts.rotate <= 0:
                    reason = "size cap"
                    break
                writer.next_file(header())
                line = encode_line(encoder.encode(s, first_in_file=True))
            writer.write_sample(line)
            progress(f"recording pid {pid}: {writer.samples} samples, {writer.size / 1e6:.1f} MB in {out}, "
                     f"{time.monotonic() - t0:.0f} s (Ctrl-C ends it cleanly)")
        else:  # the pacing ended: a signal (or the caller) stopped it, or the duration is reached
            reason = (stop.reason if isinstance(stop, StopFlag) else "stopped") if stop.is_set() else "duration reached"
        writer.end(reason)
        _say_end(log, reason, pid, out, writer.samples, opts)
        return RecordResult(reason, writer.samples, writer.part)
    finally:
        writer.close()
        sampler.close()


def run(args: argparse.Namespace) -> int:
    """`hftmem record PID --out FILE ...`: 0 when the recording ended (whatever the reason),
    2 for --rotate without --max-bytes. Raises what ``record`` raises."""
    if args.rotate and args.max_bytes is None:
        sys.stderr.write("hftmem: --rotate needs --max-bytes (the size at which a file rotates)\n")
        return 2  # a usage error, as the parser's own (cli.EXIT_USAGE)
    opts = RecordOptions(interval_s=args.interval, duration_s=args.duration, max_bytes=args.max_bytes,
                         rotate=args.rotate, smaps_every=max(1, args.smaps_every), perf=not args.no_perf,
                         engine=not args.no_engine)
    from hftmem_tui.commands.progress_line import ProgressLine

    line = ProgressLine()

    def log(text: str) -> None:
        line.clear()  # a notice on its own line, the progress line redrawn after the next sample
        sys.stderr.write(f"hftmem: {text}\n")

    try:
        record(args.pid, args.out, opts, log=log, progress=line)
    finally:
        line.clear()
    return 0
