"""The header line: who is watched, for how long, how often, and what hftmem does to it."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from hftmem_tui.feeds.sample import Sample, TargetInfo
from hftmem_tui.textsafe import visible
from hftmem_tui.ui.textupdate import set_text

OBSERVING = "observing — engine never paused"


def fmt_duration(seconds: float) -> str:
    s = max(0, int(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d{h:02d}h"
    if h:
        return f"{h}h{m:02d}m"
    return f"{m}m{s:02d}s"


class TargetHeader(Static):
    """pid, command, uptime, refresh rate and the attach state in plain words."""

    def __init__(self, info: TargetInfo, *, refresh_s: float, live: bool = True, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.info = info
        self.refresh_s = refresh_s
        self.live = live
        self.attach_state = OBSERVING
        self.uptime_s: float | None = None
        self.scenarios: tuple[str, ...] = ()
        self.ended: str | None = None

    def on_mount(self) -> None:
        self._redraw()

    def set_attach_state(self, text: str) -> None:
        """What hftmem does to the target right now ("ptrace-attached for 2 watchpoints")."""
        self.attach_state = text
        self._redraw()

    def set_ended(self, text: str) -> None:
        self.ended = text
        self._redraw()

    def show_sample(self, sample: Sample) -> None:
        # Uptime from the sample's own clock: the wall clock for a live feed, the recorded one in replay.
        self.uptime_s = sample.time - self.info.create_time
        self.scenarios = sample.engine.active_scenarios if sample.engine is not None else ()
        self._redraw()

    def _redraw(self) -> None:
        i = self.info
        t = Text()
        t.append(f" pid {i.pid} ", style="bold reverse")
        t.append(f" {visible(i.comm)}  ", style="bold")
        # The attach state comes first: on a narrow terminal it is what must not be cut off.
        if self.ended:
            t.append(visible(self.ended), style="bold white on red")
        else:
            paused = "ptrace" in self.attach_state
            t.append(visible(self.attach_state), style="bold yellow" if paused else "green")
        if self.uptime_s is not None:
            t.append(f"  up {fmt_duration(self.uptime_s)}")
        t.append(f"  every {self.refresh_s:g}s" if self.live else "  replay")
        if self.scenarios:
            t.append("  scenarios: ")
            t.append(visible(",".join(self.scenarios)), style="bold yellow")
        set_text(self, t)
