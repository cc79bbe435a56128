"""SVG snapshots of `hftmem demo`'s tour on the committed leak recording (stable: no live data), at
120x40 (the panel beside the panes) and 80x24 (the panel under them): nothing clipped.

Update after an intended change: ``pytest tests/ui/test_tour_snapshot.py --snapshot-update``.
"""

from __future__ import annotations

import pytest

from hftmem_tui.ui.screenshots import recorded_tour_app, replay_tour
from tests.helpers import snapshot_textual_mark

SIZE = (120, 40)
SMALL = (80, 24)
pytestmark = [snapshot_textual_mark(), pytest.mark.usefixtures("utc")]


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
