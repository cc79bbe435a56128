"""The interactive tour's state, without any UI: where we are, whether the bug is on, what was seen.

The TUI's TourPanel renders a TourState and feeds it samples; the state decides, through the
chapter's predicate, when the current chapter is observed. Pure: no process, no Textual.
"""

from __future__ import annotations

from collections.abc import Sequence

from hftmem_tui.demo.chapters import CHAPTERS, Chapter, Observation, TourSample

MAX_SAMPLES = 900  # a quarter of an hour at 1 s: enough for any chapter's fit, bounded memory


class TourState:
    """Chapter cursor, bug switch and the samples taken since the bug went on."""

    def __init__(self, chapters: Sequence[Chapter] = CHAPTERS, *, start: str | None = None,
                 observed: dict[str, str] | None = None) -> None:
        if not chapters:
            raise ValueError("a tour needs at least one chapter")
        self.chapters = tuple(chapters)
        names = [c.name for c in self.chapters]
        self.index = names.index(start) if start in names else 0
        self.observed: dict[str, str] = dict(observed or {})  # chapter -> summary, across runs
        self.bug_on = False
        self.fixed = False  # the bug was on and then switched off in this visit
        self.baseline: TourSample | None = None
        self.samples: list[TourSample] = []
        self.last: TourSample | None = None
        self.observation: Observation | None = None  # the current visit's latest verdict

    @property
    def chapter(self) -> Chapter:
        return self.chapters[self.index]

    @property
    def observed_now(self) -> bool:
        """Observed during this visit (not only in an earlier run)."""
        return self.observation is not None and self.observation.observed

    def engine_reports_on(self) -> bool | None:
        """What the latest sample's stats block says about this chapter's scenario (None: no data)."""
        if self.last is None or self.last.engine is None:
            return None
        return self.chapter.scenario in self.last.engine.active_scenarios

    def goto(self, index: int) -> Chapter:
        """Move to chapter ``index`` (clamped). The caller turns the old chapter's bug off first."""
        self.index = max(0, min(len(self.chapters) - 1, index))
        self.bug_on = self.fixed = False
        self.baseline, self.samples, self.observation = None, [], None
        return self.chapter

    def goto_name(self, name: str) -> Chapter:
        return self.goto([c.name for c in self.chapters].index(name))

    def switch_on(self) -> None:
        """The bug is being turned on: the latest sample becomes the baseline."""
        self.bug_on, self.fixed = True, False
        self.baseline, self.samples, self.observation = self.last, [], None

    def switch_off(self) -> None:
        self.fixed = self.bug_on
        self.bug_on = False

    def add(self, sample: TourSample) -> bool:
        """Feed one sample; True when it makes the current chapter observed for the first time this visit."""
        self.last = sample
        if not self.bug_on:
            return False
        if self.baseline is None:  # turned on before the first sample arrived
            self.baseline = sample
            return False
        self.samples.append(sample)
        del self.samples[:-MAX_SAMPLES]
        was = self.observed_now
        self.observation = self.chapter.observed(self.baseline, self.samples)
        if self.observation.observed and not was:
            self.observed[self.chapter.name] = self.observation.summary
            return True
        return False
