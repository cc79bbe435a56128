"""``hftmem demo --script``: every chapter headless on a demo engine we start and always stop.

For each chapter: one baseline sample, switch the bug on, sample until the chapter's predicate
says observed (or its time runs out), switch the bug off and wait until the engine's stats block
says it is off. One line per chapter with the numbers; exit status 0 only when all were observed.

The engine is ours: it gets PR_SET_PDEATHSIG (SIGKILL when we die, even by SIGKILL), and every
other exit path (return, exception, Ctrl-C, SIGTERM, SIGHUP) stops it in a ``finally``. Its
control socket is abstract and the sampler writes nothing, so nothing is left in /tmp.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hftmem_tui.demo.chapters import CHAPTERS, Chapter, Observation, TourSample, chapter_names
from hftmem_tui.demo.tour_state import TourProgress
from hftmem_tui.sources.engine import EngineControl, start_engine
from hftmem_tui.errors import NotAnEngine
from hftmem_tui.sources.process import stop_child
from hftmem_tui.feeds.sampler import LiveSampler
from hftmem_tui.sources.shutdown import paced, unwind_on_hangup

SAMPLE_INTERVAL_S = 0.25  # fine enough to see a 1-s stats window complete, cheap on a small engine
OFF_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class ChapterResult:
    chapter: str
    observation: Observation
    seconds: float  # from bug on to observed (or to the chapter's timeout)
    bug_off: bool  # the engine's stats block showed the scenario off again afterwards

    @property
    def ok(self) -> bool:
        return self.observation.observed and self.bug_off


def stop_engine(proc: subprocess.Popen, timeout: float = 3.0) -> None:
    """SIGTERM (the engine exits cleanly), then SIGKILL; always reaped."""
    stop_child(proc, timeout)


def sample_until(sampler: LiveSampler, chapter: Chapter, baseline: TourSample, *, interval_s: float,
                 clock: Callable[[], float] = time.monotonic) -> tuple[Observation, float]:
    """Sample every ``interval_s`` until the chapter is observed or its timeout passes."""
    start = clock()
    samples: list[TourSample] = []
    beats = paced(interval_s)
    next(beats)  # beat 0 is the baseline, taken just before
    while True:
        next(beats)  # paced() without a stop never ends
        samples.append(TourSample.from_live(sampler.sample()))
        obs = chapter.observed(baseline, samples)
        elapsed = clock() - start
        if obs.observed or elapsed >= chapter.timeout_s:
            return obs, elapsed


def wait_bug_off(sampler: LiveSampler, scenario: str, *, interval_s: float, timeout_s: float = OFF_TIMEOUT_S) -> bool:
    """True once a sample's stats block shows ``scenario`` off (False after ``timeout_s``)."""
    for _ in paced(interval_s / 2, until=time.monotonic() + timeout_s):
        e = sampler.sample().engine
        if e is not None and scenario not in e.active_scenarios:
            return True
    return False


def run_chapter(sampler: LiveSampler, control: EngineControl, chapter: Chapter, *,
                interval_s: float = SAMPLE_INTERVAL_S) -> ChapterResult:
    """Bug on, sample until observed (bounded), bug off (always), confirm it is off."""
    baseline = TourSample.from_live(sampler.sample())
    control.set_scenario(chapter.scenario, True)
    try:
        obs, elapsed = sample_until(sampler, chapter, baseline, interval_s=interval_s)
    finally:
        control.set_scenario(chapter.scenario, False)
    return ChapterResult(chapter.name, obs, elapsed, wait_bug_off(sampler, chapter.scenario, interval_s=interval_s))


def format_result(r: ChapterResult) -> str:
    if r.ok:
        state = "observed"
    elif r.observation.observed:
        state = "BUG STAYED ON"
    else:
        state = "NOT OBSERVED"
    return f"{r.chapter:<16} {state:<13} {r.seconds:4.1f} s  {r.observation.summary}"


def _warn(line: str) -> None:
    sys.stderr.write(f"hftmem: {line}\n")
    sys.stderr.flush()


class _ProgressSaver:
    """Saves the tour's progress after each chapter; a state directory that cannot be written
    (read-only home, full disk) is said once and the tour goes on."""

    def __init__(self, path: Path | None, warn: Callable[[str], None]) -> None:
        self.path, self.warn, self.failed = path, warn, False
        self.progress = TourProgress.load(path, chapter_names())

    def save(self) -> None:
        if self.failed:
            return
        try:
            self.progress.save(self.path)
        except OSError as e:
            self.failed = True
            where = e.filename or self.path or "the state directory"
            self.warn(f"tour progress not saved ({e.strerror or e}: {where}); the chapters run on")


def run_script(chapters: Sequence[Chapter] = CHAPTERS, *, interval_s: float = SAMPLE_INTERVAL_S,
               out: Callable[[str], None] = print, progress_path: Path | None = None,
               binary: Path | None = None, warn: Callable[[str], None] = _warn,
               status: Callable[[str], None] = lambda _text: None) -> int:
    """Run ``chapters`` on a fresh engine; print one line each; 0 when every one was observed.

    ``warn`` gets one-line notices (progress not saved); ``status`` a progress line while a
    chapter runs ("" when it ends). Raises SourceError subclasses (engine cannot be
    built/started, not readable) for the CLI.
    """
    saver = _ProgressSaver(progress_path, warn)
    results: list[ChapterResult] = []
    t0 = time.monotonic()
    with unwind_on_hangup():
        proc = start_engine(die_with_parent=True, binary=binary)
        try:
            with LiveSampler(proc.pid, interval_s=interval_s, smaps_every=4, budget=0.05, perf=False) as sampler:
                if sampler.info is None or not sampler.info.engine:
                    raise NotAnEngine(f"cannot read the demo engine's stats block: {'; '.join(sampler.notes)}")
                out(f"demo engine pid {proc.pid}: {len(chapters)} chapter(s), each bug on until observed, then off")
                control = EngineControl(proc.pid)
                for i, chapter in enumerate(chapters, 1):
                    status(f"[{i}/{len(chapters)}] {chapter.name}: {chapter.scenario} on, watching for it "
                           f"(up to {chapter.timeout_s:.0f} s)")
                    r = run_chapter(sampler, control, chapter, interval_s=interval_s)
                    status("")
                    results.append(r)
                    out(format_result(r))
                    if r.ok:
                        saver.progress.observed[chapter.name] = r.observation.summary
                    saver.save()
        finally:
            stop_engine(proc)
    ok = sum(r.ok for r in results)
    out(f"{ok}/{len(chapters)} chapters observed in {time.monotonic() - t0:.1f} s; engine {proc.pid} stopped")
    return 0 if ok == len(chapters) else 1
