"""SVG snapshots of every pane, driven by the committed recording (no live data: stable screens).

Update after an intended change: ``pytest tests/ui/test_snapshots.py --snapshot-update``.
Snapshots are tied to the pinned textual / pytest-textual-snapshot versions (pyproject.toml).
"""

from __future__ import annotations

import pytest

from hftmem_tui.ui.screenshots import recorded_app, replay_all
from tests.helpers import snapshot_textual_mark

SIZE = (120, 40)
SMALL = (80, 24)  # the smallest terminal the README promises: nothing may be clipped there either
ALL_PANES = ["overview", "mappings", "perf", "allocators", "latency", "memory", "audit", "watch", "allocs"]
pytestmark = [snapshot_textual_mark(), pytest.mark.usefixtures("utc")]


def show(pane: str):
    async def run_before(pilot) -> None:
        replay_all(pilot.app)  # every recorded sample, as the sampler thread would post them
        pilot.app.show_pane(pane)
        for _ in range(3):  # focus moves to the pane, then the footer recomputes its bindings
            await pilot.pause(0.1)

    return run_before


class TestPanes:
    @pytest.mark.parametrize("pane", ["overview", "mappings", "perf", "allocators", "latency", "audit", "watch", "allocs"])
    def test_pane(self, snap_compare, pane):
        """Each pane after the whole leak recording."""
        assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=show(pane))

    def test_overview_80x24_block_graph(self, snap_compare):
        """The smallest supported terminal with the block graph style (fonts without braille)."""
        assert snap_compare(recorded_app(graph_style="block"), terminal_size=(80, 24), run_before=show("overview"))

    def test_mappings_sorted_by_growth(self, snap_compare):
        """Mappings sorted by growth since attach: the leaking mapping first, highlighted."""
        async def run_before(pilot) -> None:
            await show("mappings")(pilot)
            from hftmem_tui.ui.mappings_pane import MappingTable

            pilot.app.query_one(MappingTable).sort_by("growth")
            await pilot.pause()

        assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=run_before)

    def test_help(self, snap_compare):
        """The help screen over the overview (key: ?)."""
        async def run_before(pilot) -> None:
            await show("overview")(pilot)
            await pilot.press("question_mark")

        assert snap_compare(recorded_app(), terminal_size=SIZE, run_before=run_before)


class TestSmallTerminal:
    @pytest.mark.parametrize("pane", ALL_PANES)
    def test_pane_80x24(self, snap_compare, pane):
        """Each pane at 80x24: short tab labels, a footer that fits, lines that wrap instead of clipping."""
        assert snap_compare(recorded_app(), terminal_size=SMALL, run_before=show(pane))

    def test_help_80x24(self, snap_compare):
        """The help screen at 80x24 (it scrolls rather than being cut)."""
        async def run_before(pilot) -> None:
            await show("overview")(pilot)
            await pilot.press("question_mark")

        assert snap_compare(recorded_app(), terminal_size=SMALL, run_before=run_before)
