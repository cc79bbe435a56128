"""`hftmem replay FILE`: the attach TUI, offline, on a recording, with a time cursor.

The recording is read once (RecordedFeed); no thread samples anything. The cursor (model/cursor.py)
says which sample is on screen: stepping forward folds one sample into the History, anything else
(back, a jump) rebuilds the History from the first sample up to the cursor, so every pane shows
exactly what `hftmem attach` showed at that moment. Panes that need a live process (memory,
audit, watchpoints, allocation probes) are handed RecordedServices, which refuse: the panes say
so instead of touching whatever process now has the recorded pid.
"""

from __future__ import annotations


from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, Static

from hftmem_tui.model.cursor import TimeCursor, clock, parse_when
from hftmem_tui.model.history import History
from hftmem_tui.feeds.recording import RecordedFeed
from hftmem_tui.feeds.sample import Sample
from hftmem_tui.services import RecordedServices
from hftmem_tui.ui.app import HftmemApp
from hftmem_tui.ui.header import fmt_duration
from hftmem_tui.textsafe import visible
from hftmem_tui.ui.safe import notify_plain

KEYS = "space play/pause  , . step  [ ] ±1 min  { } ±10 min  home end  + - speed  t go to time"


class ReplayBar(Static):
    """Where the cursor is in the recording, playback state, and the recording's own notices."""

    def __init__(self, cursor: TimeCursor, *, notice: str | None = None, end_reason: str | None = None,
                 id: str | None = None) -> None:
        super().__init__("", id=id)
        self.cursor = cursor
        self.notice = notice
        self.end_reason = end_reason

    def on_mount(self) -> None:
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        c = self.cursor
        t = Text()
        state = f"▶ ×{c.speed:g}" if c.playing else "❚❚ paused"
        t.append(f" {state} ", style="bold reverse" if c.playing else "reverse")
        t.append(f" {clock(c.time)}", style="bold")
        t.append(f"  +{fmt_duration(c.elapsed_s)} of {fmt_duration(c.end - c.start)}")
        t.append(f"  sample {c.index + 1}/{len(c)}")
        if c.at_end:
            end = f"end of recording: {visible(self.end_reason)}" if self.end_reason else "end of recording (no end line)"
            t.append(f"  {end}", style="bold")
        width = max(10, (self.size.width or 80) - 2)
        span = c.end - c.start
        pos = 0 if span <= 0 else round((c.time - c.start) / span * (width - 1))
        bar = Text("─" * pos, style="cyan") + Text("●", style="bold cyan") + Text("─" * (width - 1 - pos), style="dim")
        lines = [t, Text(" ") + bar]
        if self.notice:
            lines.append(Text(f" damaged recording: {visible(self.notice)}", style="bold yellow"))
        lines.append(Text(f" {KEYS}", style="dim"))
        self.update(Text("\n").join(lines))


class GotoScreen(ModalScreen[str | None]):
    """Ask where to put the cursor."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="goto-box"):
            yield Label("go to: start, end, +SECONDS, -SECONDS, @SECONDS from the start, or HH:MM[:SS]")
            yield Input(placeholder="e.g. 03:12 or -300", id="goto-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ReplayApp(HftmemApp):
    """HftmemApp on a RecordedFeed and its refusing services, no sampler thread, a time cursor instead of the clock."""

    BINDINGS = [
        Binding("space", "toggle_play", "play/pause"),
        Binding("full_stop", "step(1)", "step", show=False),
        Binding("comma", "step(-1)", "back", show=False),
        Binding("right_square_bracket", "jump(60)", "+1 min", show=False),
        Binding("left_square_bracket", "jump(-60)", "-1 min", show=False),
        Binding("right_curly_bracket", "jump(600)", "+10 min", show=False),
        Binding("left_curly_bracket", "jump(-600)", "-10 min", show=False),
        Binding("home", "seek(0)", "start", show=False, priority=True),
        Binding("end", "seek(-1)", "end", show=False, priority=True),
        Binding("plus,equals_sign", "speed(1)", "faster", show=False),
        Binding("minus", "speed(-1)", "slower", show=False),
        Binding("t", "goto", "go to time"),
    ]

    def __init__(self, feed: RecordedFeed, *, at: str = "end", speed: float = 1.0, play: bool = False,
                 graph_style: str = "braille") -> None:
        if not feed.samples:
            raise ValueError("no samples")
        super().__init__(feed, services=RecordedServices(feed.start()), refresh_s=feed.interval_s,
                         graph_style=graph_style, sampling=False)
        self.samples: list[Sample] = feed.samples
        self.cursor = TimeCursor([s.time for s in self.samples], speed=speed)
        self.start_at = at
        self.play_on_start = play
        self.notice = feed.recording.notice
        end = feed.recording.end
        self.end_reason = str(end.get("reason")) if end else None
        self.shown_index: int | None = None
        self._timer: Timer | None = None
        self.add_exit_hook(self._pause)

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if isinstance(widget, Footer):
                yield ReplayBar(self.cursor, notice=self.notice, end_reason=self.end_reason, id="replay-bar")
            yield widget

    def on_mount(self) -> None:
        try:
            index = parse_when(self.start_at, self.cursor)
        except ValueError as e:
            notify_plain(self, f"--at: {e}; starting at the end", severity="warning", timeout=8)
            index = len(self.cursor) - 1
        self.goto(index)
        if self.notice:
            notify_plain(self, self.notice, title="damaged recording: bad lines skipped", severity="warning",
                         timeout=15)
        if self.play_on_start:
            self.action_toggle_play()

    # ------------------------------------------------------------------ cursor
    def goto(self, index: int) -> None:
        """Show sample ``index``: one step forward folds one sample, anything else rebuilds."""
        index = self.cursor.seek_index(index)
        if self.shown_index is not None and index == self.shown_index + 1:
            self.apply_sample(self.samples[index])
        elif index != self.shown_index:
            self._rebuild(index)
        self.shown_index = index
        self.query_one(ReplayBar).redraw()

    def _rebuild(self, index: int) -> None:
        self.history = History()
        self._audit_history.clear()
        self._shown_seq.clear()
        for s in self.samples[:index]:
            self.history.add(s)
        self.apply_sample(self.samples[index])

    def action_step(self, n: int) -> None:
        self._pause()
        self.goto(self.cursor.index + n)

    def action_jump(self, seconds: float) -> None:
        self._pause()
        self.goto(self.cursor.jump(seconds))

    def action_seek(self, index: int) -> None:
        self._pause()
        self.goto(index if index >= 0 else len(self.cursor) - 1)

    def action_speed(self, direction: int) -> None:
        speed = self.cursor.faster() if direction > 0 else self.cursor.slower()
        self.notify(f"playback ×{speed:g}", timeout=2)
        if self.cursor.playing:
            self._schedule()
        self.query_one(ReplayBar).redraw()

    def action_goto(self) -> None:
        def done(text: str | None) -> None:
            if not text:
                return
            try:
                index = parse_when(text, self.cursor)
            except ValueError as e:
                notify_plain(self, str(e), title="go to", severity="error", timeout=6)
                return
            self._pause()
            self.call_after_refresh(self.goto, index)  # once the modal is gone and the panes are back

        self.push_screen(GotoScreen(), done)

    # ------------------------------------------------------------------ playback
    def action_toggle_play(self) -> None:
        if self.cursor.playing:
            self._pause()
        else:
            if self.cursor.at_end:
                self.goto(0)
            self.cursor.playing = True
            self._schedule()
        self.query_one(ReplayBar).redraw()

    def _pause(self) -> None:
        self.cursor.playing = False
        self._stop_timer()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _schedule(self) -> None:
        self._stop_timer()
        delay = self.cursor.delay_to_next()
        if delay is None:
            self.cursor.playing = False
            self.query_one(ReplayBar).redraw()
            return
        self._timer = self.set_timer(delay, self._play_tick)

    def _play_tick(self) -> None:
        self._timer = None
        if not self.cursor.playing or self._hooks_ran or not self.screen_stack:  # quitting
            return
        self.goto(self.cursor.index + 1)
        self._schedule()


def run_replay(path: str, *, at: str = "end", speed: float = 1.0, play: bool = False,
               graph_style: str = "braille") -> int:
    """Open the recording, then run the TUI on it. Raises RecordingError before the terminal is touched."""
    from hftmem_tui.feeds.recording import RecordingError

    feed = RecordedFeed(path)
    if not feed.samples:
        raise RecordingError(feed.recording.notice or f"{path}: the recording holds no sample")
    try:
        parse_when(at, TimeCursor([s.time for s in feed.samples]))
    except ValueError as e:
        raise RecordingError(f"--at {e}") from None
    app = ReplayApp(feed, at=at, speed=speed, play=play, graph_style=graph_style)
    try:
        app.run()
    finally:
        app.run_exit_hooks()
    return int(app.return_code or 0)
