"""Every custom message of the TUI, in one place (past tense: something happened)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.message import Message

from hftmem_tui.model.audit import Check
from hftmem_tui.feeds.sample import Sample


class SampleReady(Message):
    """The sampler thread read one sample."""

    def __init__(self, sample: Sample) -> None:
        super().__init__()
        self.sample = sample


class TargetExited(Message):
    """The feed has no more samples: the process exited (live) or the recording ended."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class SampleFailed(Message):
    """One sample failed for a reason other than the target exiting (shown, sampling goes on)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class AuditChecked(Message):
    """The readiness audit ran (in a worker): its checks, or why it could not run."""

    def __init__(self, checks: Sequence[Check], error: str | None = None) -> None:
        super().__init__()
        self.checks = tuple(checks)
        self.error = error
