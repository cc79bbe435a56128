"""SVG snapshots of `hftmem demo`'s tour on the committed leak recording (stable: no live data), at
120x40 (the panel beside the panes) and 80x24 (the panel under them): nothing clipped.

Update after an intended change: ``pytest tests/ui/test_tour_snapshot.py --snapshot-update``.
"""

from __future__ import annotations

import os
import time
from importlib.metadata import version

import pytest

from hftmem_tui.ui.screenshots import recorded_tour_app, replay_tour

SIZE = (120, 40)
SMALL = (80, 24)
SNAPSHOT_TEXTUAL = "8.2.8"
pytestmark = pytest.mark.skipif(version("textual") != SNAPSHOT_TEXTUAL,
                                reason=f"snapshots are from textual {SNAPSHOT_TEXTUAL}, this is {version('textual')}")


@pytest.fixture(autouse=True)
def utc():
    """Clock times on screen in UTC, then the process's own zone back."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def tour_on(pane: str | None = None):
    async def run_before(pilot) -> None:
        pilot.app.animation_level = "none"
        replay_tour(pilot.app)
        for _ in range(3):  # the panel's first ChapterChanged shows the chapter's pane
            await pilot.pause(0.1)
        if pane is not None:
            pilot.app.show_pane(pane)
            for _ in range(3):
                await pilot.pause(0.1)
        pilot.app.clear_notifications()  # the "observed" toast would cover the panel
        await pilot.pause(0.1)

    return run_before


def test_leak_chapter_observed_on_the_recording(snap_compare, tmp_path):
    """The leak chapter beside the overview: observed from the recorded samples, gauge highlighted."""
    app = recorded_tour_app(tmp_path / "tour.json")
    assert snap_compare(app, terminal_size=SIZE, run_before=tour_on())
    assert app.tour.state.observed_now


@pytest.mark.parametrize("pane", ["allocators", "mappings"])
def test_tour_beside_a_wide_pane(snap_compare, tmp_path, pane):
    """120x40 with the panel open: the tab bar, the footer and the pane's lines all fit."""
    assert snap_compare(recorded_tour_app(tmp_path / "tour.json"), terminal_size=SIZE, run_before=tour_on(pane))


@pytest.mark.parametrize("pane", ["overview", "allocators"])
def test_tour_at_80x24(snap_compare, tmp_path, pane):
    """80x24: the panel goes under the panes, full width; nothing is cut on the right."""
    assert snap_compare(recorded_tour_app(tmp_path / "tour.json"), terminal_size=SMALL, run_before=tour_on(pane))
