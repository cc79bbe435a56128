"""SVG snapshot of `hftmem demo`'s tour on the committed leak recording (stable: no live data).

Update after an intended change: ``pytest tests/ui/test_tour_snapshot.py --snapshot-update``.
"""

from __future__ import annotations

from hftmem_tui.ui.screenshots import recorded_tour_app, replay_tour
from tests.ui.test_snapshots import SIZE, utc  # noqa: F401 - the autouse UTC fixture


def test_leak_chapter_observed_on_the_recording(snap_compare, tmp_path):
    """The leak chapter beside the overview: observed from the recorded samples, gauge highlighted."""

    async def run_before(pilot) -> None:
        pilot.app.animation_level = "none"
        replay_tour(pilot.app)
        for _ in range(3):
            await pilot.pause(0.1)

    app = recorded_tour_app(tmp_path / "tour.json")
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    assert app.tour.state.observed_now
