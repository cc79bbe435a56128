"""The time cursor of `hftmem replay`: which recorded sample is on screen, and playback.

Pure: it holds the recorded sample times and an index; the UI asks it where to go (step, jump
by seconds, to a clock time, start/end) and when the next sample is due while playing at N x.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


class TimeCursor:
    """An index into ``times`` (ascending sample times, seconds). ``index`` is the sample shown.

    Raises ValueError for an empty recording (there is nothing to put a cursor on).
    """

    def __init__(self, times: Sequence[float], *, speed: float = 1.0) -> None:
        if not times:
            raise ValueError("a time cursor needs at least one sample")
        self.times = list(times)
        self.index = 0
        self.playing = False
        self.speed = speed if speed > 0 else 1.0

    def __len__(self) -> int:
        return len(self.times)

    @property
    def time(self) -> float:
        return self.times[self.index]

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1]

    @property
    def at_end(self) -> bool:
        return self.index == len(self.times) - 1

    @property
    def elapsed_s(self) -> float:
        return self.time - self.start

    def seek_index(self, index: int) -> int:
        """Move to ``index`` (clamped to the recording); returns the new index."""
        self.index = min(max(0, index), len(self.times) - 1)
        return self.index

    def step(self, n: int = 1) -> int:
        return self.seek_index(self.index + n)

    def seek_time(self, t: float) -> int:
        """Move to the last sample at or before ``t`` (the first sample if ``t`` precedes it)."""
        return self.seek_index(bisect.bisect_right(self.times, t) - 1)

    def jump(self, seconds: float) -> int:
        """Move by ``seconds`` of recorded time (negative: back), at least one sample if possible."""
        before = self.index
        if seconds >= 0:
            i = bisect.bisect_right(self.times, self.time + seconds) - 1
            return self.seek_index(max(i, before + 1))
        i = bisect.bisect_left(self.times, self.time + seconds)
        return self.seek_index(min(i, before - 1))

    def seek_fraction(self, fraction: float) -> int:
        """Move to ``fraction`` (0..1) of the recorded time span."""
        f = min(max(0.0, fraction), 1.0)
        return self.seek_time(self.start + f * (self.end - self.start))

    def faster(self) -> float:
        later = [s for s in SPEEDS if s > self.speed]
        self.speed = later[0] if later else self.speed
        return self.speed

    def slower(self) -> float:
        earlier = [s for s in SPEEDS if s < self.speed]
        self.speed = earlier[-1] if earlier else self.speed
        return self.speed

    def delay_to_next(self) -> float | None:
        """Wall seconds until the next sample is due when playing at ``speed`` (None at the end)."""
        if self.at_end:
            return None
        return max(0.0, (self.times[self.index + 1] - self.time) / self.speed)


def clock(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def parse_when(text: str, cursor: TimeCursor) -> int:
    """Where "start", "end", "+90", "-30" (seconds from the cursor), "@120" (seconds from the
    first sample) or a clock time "HH:MM[:SS]" (on the recording's days) puts the cursor.
    Returns the index without moving the cursor. Raises ValueError with a user-facing reason."""
    s = text.strip().lower()
    probe = TimeCursor(cursor.times)
    probe.index = cursor.index
    if s in ("start", "begin", "first"):
        return 0
    if s in ("end", "last"):
        return len(cursor) - 1
    try:
        if s[:1] in "+-" and len(s) > 1:
            return probe.jump(float(s))
        if s[:1] == "@":
            return probe.seek_time(cursor.start + float(s[1:]))
    except ValueError:
        raise ValueError(f"'{text}' is not a number of seconds") from None
    parts = s.split(":")
    if 2 <= len(parts) <= 3 and all(p.isdigit() for p in parts):
        h, m, sec = (int(p) for p in (parts + ["0"])[:3])
        if h > 23 or m > 59 or sec > 59:
            raise ValueError(f"'{text}' is not a clock time")
        day = datetime.fromtimestamp(cursor.start)
        for offset_days in (0, 1, 2):  # a recording may cross midnight (or two)
            t = day.replace(hour=h, minute=m, second=sec).timestamp() + offset_days * 86400
            if cursor.start <= t <= cursor.end + 0.999:
                return probe.seek_time(t)
        raise ValueError(f"{text} is outside the recording ({clock(cursor.start)} to {clock(cursor.end)})")
    raise ValueError(f"'{text}': use start, end, +SECONDS, -SECONDS, @SECONDS or HH:MM[:SS]")
