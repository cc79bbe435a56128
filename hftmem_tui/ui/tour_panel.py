"""The guided tour's panel: the current chapter, whether its effect has been observed, and its keys.

The panel never talks to the engine itself: it posts ``ScenarioRequested`` (the app switches
the scenario in a worker), ``ChapterChanged`` (the app focuses the chapter's pane and row),
``WatchRequested`` and ``ChapterObserved`` (the app saves the progress). It is fed samples
with ``show_sample(TourSample)`` and decides "observed" through the chapter's own predicate.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from hftmem_tui.demo.chapters import CHAPTERS, Chapter, TourSample
from hftmem_tui.demo.tour import TourState
from hftmem_tui.ui.safe import notify_plain, plain


class ChapterList(ModalScreen[str | None]):
    """Pick a chapter; dismissed with its name, or None on escape."""

    DEFAULT_CSS = """
    ChapterList { align: center middle; }
    ChapterList > OptionList { width: 60; max-width: 95%; height: auto; max-height: 14; border: round $accent; }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "close")]

    def __init__(self, state: TourState) -> None:
        super().__init__()
        self._state = state

    def compose(self) -> ComposeResult:
        options = [Option(f"{'✓' if c.name in self._state.observed else ' '} {c.title}", id=c.name)
                   for c in self._state.chapters]
        ol = OptionList(*options, id="chapter-options")
        ol.highlighted = self._state.index
        yield ol

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class TourPanel(Vertical, can_focus=True):
    """One chapter at a time: the bug, the offending line, where to look, how to confirm, the fix."""

    DEFAULT_CSS = """
    TourPanel { height: 1fr; border: round $accent; padding: 0 1; }
    TourPanel:focus-within, TourPanel:focus { border: round $success; }
    TourPanel > #tour-title { height: 1; text-style: bold; }
    TourPanel > #tour-status { height: auto; max-height: 3; }
    TourPanel > #tour-gauge { height: 1; }
    TourPanel > VerticalScroll { height: 1fr; }
    TourPanel #tour-watch { height: auto; display: none; border: round $warning; }
    """
    BINDINGS = [
        Binding("n", "next", "next chapter"),
        Binding("p", "previous", "previous"),
        Binding("c", "chapters", "chapters"),
        Binding("b", "toggle_bug", "bug on/off"),
        Binding("f", "fix", "apply fix"),
        Binding("w", "watch", "watch"),
    ]

    class ScenarioRequested(Message):
        """Switch ``scenario`` on or off in the engine."""

        def __init__(self, scenario: str, on: bool) -> None:
            super().__init__()
            self.scenario = scenario
            self.on = on

    class ChapterChanged(Message):
        """The tour moved to ``chapter``: focus ``chapter.pane``, highlight ``chapter.highlight``."""

        def __init__(self, chapter: Chapter) -> None:
            super().__init__()
            self.chapter = chapter

    class ChapterObserved(Message):
        """``chapter``'s effect was seen in live data for the first time in this visit."""

        def __init__(self, chapter: Chapter, summary: str) -> None:
            super().__init__()
            self.chapter = chapter
            self.summary = summary

    class WatchRequested(Message):
        """Arm the chapter's suggested watchpoint (``target`` is SYMBOL[.field])."""

        def __init__(self, chapter: Chapter, target: str) -> None:
            super().__init__()
            self.chapter = chapter
            self.target = target

    def __init__(self, chapters: Sequence[Chapter] = CHAPTERS, *, start: str | None = None,
                 observed: dict[str, str] | None = None, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.state = TourState(chapters, start=start, observed=observed)

    def compose(self) -> ComposeResult:
        yield Static(id="tour-title")
        yield Static(id="tour-status")
        yield Static(id="tour-gauge")
        with VerticalScroll():
            yield Static(id="tour-watch")
            yield Static(id="tour-body")

    def on_mount(self) -> None:
        self._render_chapter()
        self.post_message(self.ChapterChanged(self.state.chapter))

    # ------------------------------------------------------------------ data in

    def show_sample(self, sample: TourSample) -> None:
        """Feed one live sample; marks the chapter observed when its predicate says so."""
        if self.state.add(sample):
            self.post_message(self.ChapterObserved(self.state.chapter, self.state.observed[self.state.chapter.name]))
        self._render_status()

    # ------------------------------------------------------------------ actions

    def action_next(self) -> None:
        self._move(self.state.index + 1)

    def action_previous(self) -> None:
        self._move(self.state.index - 1)

    def action_chapters(self) -> None:
        def picked(name: str | None) -> None:
            if name is not None:
                self._move([c.name for c in self.state.chapters].index(name))

        self.app.push_screen(ChapterList(self.state), picked)

    def action_toggle_bug(self) -> None:
        if self.state.bug_on:
            self.action_fix()
            return
        self.state.switch_on()
        self.post_message(self.ScenarioRequested(self.state.chapter.scenario, True))
        self._render_status()

    def action_fix(self) -> None:
        if not self.state.bug_on:
            self.app.notify("the bug is not on: press b to turn it on first", severity="warning")
            return
        self.state.switch_off()
        self.post_message(self.ScenarioRequested(self.state.chapter.scenario, False))
        self._render_status()

    def action_watch(self) -> None:
        c = self.state.chapter
        if c.watch is None:
            notify_plain(self.app, f"no watchpoint for this chapter: {c.confirm}", timeout=8)
            return
        self.post_message(self.WatchRequested(c, c.watch))

    def show_watch_result(self, lines: list[str]) -> None:
        """Show what the chapter's watchpoint caught (hit, location, call chain) above the text."""
        box = self.query_one("#tour-watch", Static)
        box.update(plain("\n".join(lines)))
        box.display = True

    def _move(self, index: int) -> None:
        index = max(0, min(len(self.state.chapters) - 1, index))
        if index == self.state.index:
            return
        if self.state.bug_on:  # never leave a chapter's bug running behind us
            self.post_message(self.ScenarioRequested(self.state.chapter.scenario, False))
        self.state.goto(index)
        self.query_one("#tour-watch", Static).display = False
        self._render_chapter()
        self.post_message(self.ChapterChanged(self.state.chapter))

    # ------------------------------------------------------------------ rendering

    def status_text(self) -> Text:
        s, c = self.state, self.state.chapter
        seen = sum(1 for ch in s.chapters if ch.name in s.observed)
        head = Text(f"chapter {s.index + 1}/{len(s.chapters)} · observed {seen}/{len(s.chapters)} · ", style="dim")
        if s.bug_on:
            obs = s.observation
            if obs is not None and obs.observed:
                return head + Text("✓ OBSERVED ", style="bold green") + plain(obs.summary) + \
                    Text("\nf: apply the fix (bug off) · w: watch · n: next", style="dim")
            engine = s.engine_reports_on()
            waiting = "bug ON, waiting for the engine" if not engine else "bug ON, watching the live data"
            detail = f": {obs.summary}" if obs is not None else ""
            return head + Text(waiting, style="bold yellow") + plain(detail)
        if s.fixed:
            text = head + Text("fixed: bug off ", style="bold cyan")
            if c.name in s.observed:
                text += plain(f"(observed: {s.observed[c.name]})")
            return text + Text("\nn: next chapter", style="dim")
        text = head + Text("bug off ", style="bold") + Text("· b: turn it on", style="dim")
        if c.name in s.observed:
            text += plain(f"\nobserved before: {s.observed[c.name]}", "dim")
        return text

    def body_text(self) -> Text:
        c = self.state.chapter
        t = Text()
        t.append(c.bug + "\n\n")
        t.append(f"{c.source} ({c.where}):\n", style="dim")
        t.append(f"  {c.code}\n\n", style="bold red")
        t.append("Look: ", style="bold")
        t.append(f"{c.look}  [{c.pane} pane, {c.highlight}]\n")
        t.append("Confirm: ", style="bold")
        t.append(c.confirm + "\n")
        if c.watch:
            t.append("Watch: ", style="bold")
            t.append(f"{c.watch}  (w)\n")
        t.append("Fix: ", style="bold")
        t.append(c.fix)
        return t

    def _render_chapter(self) -> None:
        self.query_one("#tour-title", Static).update(plain(self.state.chapter.title))
        self.query_one("#tour-body", Static).update(self.body_text())
        self._render_status()

    def gauge_text(self) -> Text:
        """The chapter's counter, live, and how far it moved since the bug went on."""
        s, c = self.state, self.state.chapter
        value = c.gauge_value(s.last)
        if value is None:
            return Text(f"{c.gauge}: waiting for engine data", style="dim")
        text = Text.assemble(("▶ ", "bold"), (f" {c.gauge} {value:,} ", "reverse bold"))
        base = c.gauge_value(s.baseline) if s.bug_on or s.fixed else None
        if base is not None:
            text.append(f"  {value - base:+,} since the bug went on")
        return text

    def _render_status(self) -> None:
        self.query_one("#tour-status", Static).update(self.status_text())
        self.query_one("#tour-gauge", Static).update(self.gauge_text())
