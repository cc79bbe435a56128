"""Keys of the TUI on the committed recording (RecordedServices, no engine): every pane key from every
pane, escape out of a text box, z freeze/resume, help per app, quit and its exit hooks, the 16-colour theme."""

from __future__ import annotations

import threading

import pytest
from textual.widgets import Input, Static

from hftmem_tui.feeds.recording import RecordedFeed
from hftmem_tui.ui.app import HelpScreen
from hftmem_tui.ui.header import TargetHeader
from hftmem_tui.ui.replay import ReplayApp
from hftmem_tui.ui.screenshots import (
    RECORDING,
    recorded_app,
    recorded_tour_app,
    replay_all,
)
from hftmem_tui.ui.themes import ANSI_THEME, sixteen_colours
from tests.helpers import text_of, wait_for_pilot


def attach_app():
    app = recorded_app()
    return app


def replay_app():
    return ReplayApp(RecordedFeed(str(RECORDING)))


@pytest.mark.parametrize("make", [attach_app, replay_app], ids=["attach", "replay"])
async def test_every_pane_key_works_from_every_pane(make):
    """From each pane (its main widget focused), each other pane's digit shows that pane."""
    app = make()
    async with app.run_test(size=(120, 40)) as pilot:
        if not isinstance(app, ReplayApp):
            replay_all(app)
        await pilot.pause()
        ids = app.pane_ids
        trapped = []

        async def press(n: int) -> None:
            before = app.active_pane
            await pilot.press(str(n + 1))
            await pilot.pause()
            if app.active_pane != ids[n]:
                trapped.append(f"{before} --{n + 1}--> {app.active_pane}")
                app.show_pane(ids[n])
                await pilot.pause()

        for i in range(len(ids)):  # i -> j, then j -> i: every ordered pair once
            await press(i)
            for j in range(i + 1, len(ids)):
                await press(j)
                await press(i)
        assert not trapped


async def test_escape_leaves_a_text_box_and_digits_go_into_it():
    """In the mappings filter a digit is text; escape gives the keys back to the pane."""
    app = attach_app()
    async with app.run_test(size=(120, 40)) as pilot:
        replay_all(app)
        await pilot.press("2")
        await pilot.press("slash")
        box = app.query_one("#mappings-filter", Input)
        assert app.focused is box
        await pilot.press("l", "i", "b", "3")
        assert box.value == "lib3" and app.active_pane == "mappings"
        await pilot.press("escape")
        assert not isinstance(app.focused, Input)
        await pilot.press("3")
        assert app.active_pane == "perf"
        await pilot.press("2", "slash")
        app.screen.set_focus(app.query_one("#mappings-filter", Input))
        app.action_leave_input()  # the app's own escape (panes without one: memory)
        assert app.focused is app.query_one("#mappings-table")


async def test_z_freezes_the_display_and_resumes_at_now():
    """While frozen, samples still go into the history; the header says since when; z again shows the newest."""
    app = attach_app()
    samples = app.feed.samples
    half = len(samples) // 2
    async with app.run_test(size=(120, 40)) as pilot:
        for s in samples[:half]:
            app.apply_sample(s)
        await pilot.pause()
        header = app.query_one(TargetHeader)
        stats = app.query_one("#overview-stats", Static)
        before = text_of(stats)
        await pilot.press("z")
        assert app.frozen_since is not None and "FROZEN since" in text_of(header)
        for s in samples[half:]:
            app.apply_sample(s)
        await pilot.pause()
        assert app.history.samples == len(samples)  # the history stays complete
        assert text_of(stats) == before  # the screen does not move
        await pilot.press("2")  # a pane first shown while frozen shows the frozen moment too
        await pilot.press("1")
        assert text_of(stats) == before
        await pilot.press("z")
        await pilot.pause()
        assert app.frozen_since is None and "FROZEN" not in text_of(header)
        assert text_of(stats) != before  # jumped to now


def help_of(app) -> str:
    return text_of(app.screen.query_one("#help-text", Static))


async def test_help_lists_the_keys_of_the_app_it_is_in(tmp_path):
    """attach: no tour or replay keys; the demo adds the tour's; replay adds its own."""
    attach = attach_app()
    async with attach.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(attach.screen, HelpScreen)
        text = help_of(attach)
        assert "z freeze" in text and "u ⌫ back" in text and "Tour" not in text and "Replay" not in text
    tour = recorded_tour_app(tmp_path / "tour.json")
    async with tour.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        text = help_of(tour)
        for key in ("n next chapter", "p previous", "c chapters", "b bug on/off", "f fix", "w watch", "t tour"):
            assert key in text
    replay = replay_app()
    async with replay.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        text = help_of(replay)
        assert "space play/pause" in text and "t go to time" in text and "Tour" not in text


async def test_memory_footer_and_help_say_the_same_back_key():
    """The footer shows the first key of each shown binding: the help lists it first too."""
    from hftmem_tui.ui.memory_pane import HexBody

    shown = [b for b in HexBody.BINDINGS if b.action == "back" and b.show]
    assert [b.key for b in shown] == ["u"]


async def test_quit_runs_every_exit_hook_even_with_one_hanging():
    """q: the app exits, every hook ran (in parallel), a hanging one is abandoned after the bound."""
    app = attach_app()
    ran = threading.Event()
    release = threading.Event()
    started = threading.Event()

    def hanging() -> None:
        started.set()
        release.wait()

    app.add_exit_hook(ran.set)
    app.add_exit_hook(hanging)
    app.exit_hooks_wait_s = 0.2
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            replay_all(app)
            await pilot.press("q")
            await wait_for_pilot(pilot, lambda: not app.is_running)
        assert ran.is_set() and started.is_set()
        assert app.exit_hooks_late and "hanging" in app.exit_hooks_late[0]
    finally:
        release.set()


def test_sixteen_colour_terminals():
    """The Linux console and plain screen pick the ANSI theme; a truecolour terminal does not."""
    assert sixteen_colours({"TERM": "linux"}) and sixteen_colours({"TERM": "screen"})
    assert not sixteen_colours({"TERM": "screen-256color"})
    assert not sixteen_colours({"TERM": "xterm-256color", "COLORTERM": "truecolor"})


async def test_ansi_theme_renders_with_16_colours_only():
    """Every cell of every pane under the hftmem-16 theme uses a standard ANSI colour or the default."""
    app = attach_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.theme = ANSI_THEME
        replay_all(app)
        assert app.theme in app.available_themes and "textual-dark" in app.available_themes
        bad = set()
        for pane in app.pane_ids:
            app.show_pane(pane)
            await pilot.pause(0.1)
            for strip in app.screen._compositor.render_strips():  # noqa: SLF001 - what goes to the terminal
                for seg in strip:
                    for colour in (seg.style.color, seg.style.bgcolor) if seg.style else ():
                        if colour is not None and not (colour.is_default or colour.number is not None and
                                                       colour.number < 16 and colour.triplet is None):
                            bad.add((pane, str(colour)))
        assert not bad, sorted(bad)[:10]


async def test_readme_names_every_key_the_help_lists(tmp_path):
    """One source of truth: each key of the attach, demo and replay bindings and of every pane's key table is in the README."""
    from textual.binding import Binding
    from textual.keys import key_to_character

    from hftmem_tui.ui.keyhelp import PANE_KEYS, app_tables
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    missing = []
    for app in (attach_app(), recorded_tour_app(tmp_path / "tour.json"), replay_app()):
        async with app.run_test(size=(120, 40)):
            tables = [*PANE_KEYS.values(), *app_tables(app)]
            for binding in (b for t in tables for b in t.bindings):
                if binding.action.startswith(("show_index(", "move(")):
                    continue  # the 1-9 rows and "arrows"
                for key in binding.key.split(","):
                    names = {key, key_to_character(key) or key, app.get_key_display(Binding(key, binding.action))}
                    if not any(f"`{n}`" in readme for n in names):
                        missing.append(f"{type(app).__name__}: {key} ({binding.description})")
    assert not missing, sorted(set(missing))
