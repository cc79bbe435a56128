"""Where the TUI's samples come from: a live sampler or a recording, behind one Protocol.

The app only ever calls these four things, in a worker thread, so a test or `hftmem replay`
can hand it any feed. ``live`` tells the UI whether "now" is the wall clock (live) or the
sample's own time (a recording): uptime, ages and the banner wording follow from it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from hftmem_tui.feeds.sample import Sample, TargetInfo


class FeedEnded(Exception):
    """A recorded feed has no more samples (the live sampler raises TargetGone instead)."""


@runtime_checkable
class SampleFeed(Protocol):
    pid: int
    live: bool

    def start(self) -> TargetInfo:
        """Who is sampled. Raises SourceError for a bad target (before the UI starts)."""
        ...

    def sample(self) -> Sample:
        """The next sample. Raises TargetGone members (live) or FeedEnded (recorded)."""
        ...

    def close(self) -> None:
        """Release what the feed holds (perf stream, file). Safe to call twice."""
        ...
