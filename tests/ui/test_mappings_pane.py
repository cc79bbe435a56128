"""The Mappings pane at 100,000 mappings (generated samples on the recorded App): filter, sort,
clear, scroll and a header click give the right rows, the count line and a kept cursor. The
time each key takes is a benchmark (benchmarks/bench_mappings_table.py), not asserted here."""

from __future__ import annotations

import dataclasses

from rich.text import Text

from hftmem_tui.sources.procfs import Mapping
from hftmem_tui.ui.mappings_pane import MappingTable
from hftmem_tui.ui.row_table import RowTable
from hftmem_tui.ui.screenshots import recorded_app
from tests.helpers import text_of, wait_for_pilot

N = 100_000


def many_mappings(n: int, grown: frozenset[int] = frozenset()) -> tuple[Mapping, ...]:
    """``n`` mappings in address order: libraries, anonymous areas, [heap] and [stack]; the
    ``grown`` ones hold 70,000 kB more RSS (the largest)."""
    out = []
    for i in range(n):
        path = ("[heap]" if i == 1 else "[stack]" if i == n - 1 else
                "" if i % 3 == 0 else f"/usr/lib/x86_64-linux-gnu/libfoo{i % 997}.so.{i % 7}")
        rss = (i * 7919) % 65_521 + (70_000 if i in grown else 0)
        out.append(Mapping(0x7f0000000000 + i * 0x10000, 0x7f0000000000 + i * 0x10000 + 0x8000,
                           "rw-p" if i % 2 else "r-xp", 0, "00:00", i, path, size_kb=32 + i % 5000,
                           rss_kb=rss, private_dirty_kb=rss // (1 + i % 4)))
    return tuple(out)


def samples_of(app, mappings_per_read):
    """The recording's first samples, each carrying one generated full smaps read."""
    return [dataclasses.replace(s, mappings=ms) for s, ms in zip(app.feed.samples, mappings_per_read, strict=False)]


async def settled(pilot, view: MappingTable) -> None:
    await wait_for_pilot(pilot, lambda: not view.building, timeout=30, what="the mappings index")
    await pilot.pause()


def shown_names(table: RowTable, first: int, count: int) -> list[str]:
    return [str(table.get_row_at(i)[5]).removeprefix("▲ ") for i in range(first, min(first + count, table.row_count))]


async def test_filter_sort_clear_and_scroll_at_100k_mappings():
    """Typing a filter, s/r, Esc, End/PgUp/Home and a header click at 100,000 mappings."""
    app = recorded_app()
    base = many_mappings(N)
    grown = many_mappings(N, grown=frozenset({5, 6, 77_777}))
    async with app.run_test(size=(120, 40)) as pilot:
        for s in samples_of(app, [base, grown]):
            app.apply_sample(s)
        await pilot.press("2")
        view = app.query_one(MappingTable)
        table = view.table
        await settled(pilot, view)
        assert table.row_count == N and app.focused is table
        summary = text_of(app.query_one("#mappings-summary"))
        assert f"{N} mappings" in summary and "3 growing" in summary and "sort rss↓" in summary
        by_rss = sorted(range(N), key=lambda i: grown[i].rss_kb, reverse=True)  # stable: address order on ties
        assert view.shown() == [(grown[i].start, grown[i].path) for i in by_rss]
        assert isinstance(table.get_row_at(0)[5], Text) and str(table.get_row_at(0)[5]).startswith("▲ ")

        await pilot.press("slash", *"LIBFOO12.so.3")  # any case; each key re-filters the index
        await settled(pilot, view)
        wanted = [m for m in (grown[i] for i in by_rss) if "libfoo12.so.3" in m.path]
        assert wanted and view.shown() == [(m.start, m.path) for m in wanted]
        assert f"filter 'LIBFOO12.so.3': {len(wanted)} shown" in text_of(app.query_one("#mappings-summary"))

        await pilot.press("enter", "s")  # back to the table; rss -> dirty
        await settled(pilot, view)
        assert view.sort_column == "dirty" and app.focused is table
        matching = [m for m in grown if "libfoo12.so.3" in m.path]  # address order: how ties stay
        by_dirty = sorted(matching, key=lambda m: m.dirty_kb, reverse=True)
        assert view.shown() == [(m.start, m.path) for m in by_dirty]

        await pilot.press("down", "down", "down")
        kept = view.cursor_key
        await pilot.press("r")  # reversed: the cursor stays on its mapping
        await settled(pilot, view)
        assert view.shown() == [(m.start, m.path) for m in sorted(matching, key=lambda m: m.dirty_kb)]
        assert view.cursor_key == kept and view.shown()[table.cursor_row] == kept

        await pilot.press("escape")  # clear: every mapping again, still by dirty, cursor kept
        await settled(pilot, view)
        assert table.row_count == N and view.filter_text == "" and view.cursor_key == kept
        assert "filter" not in text_of(app.query_one("#mappings-summary"))

        await pilot.press("end")
        await pilot.pause()
        assert table.cursor_row == N - 1 and table.scroll_y == table.max_scroll_y
        last = view.shown()[-1]
        bottom = table.render_line(table.scrollable_content_region.height - 1).text
        assert f"{last[0]:012x}" in bottom
        await pilot.press("pageup")
        assert table.cursor_row == N - 1 - table.page_rows
        await pilot.press("home")
        await pilot.pause()
        assert table.cursor_row == 0 and table.scroll_y == 0
        assert f"{view.shown()[0][0]:012x}" in table.render_line(1).text

        await pilot.click("#mappings-table", offset=(20, 0))  # the Kbytes header
        await settled(pilot, view)
        assert view.sort_column == "kbytes" and view.sort_reverse
        sizes = [int(str(table.get_row_at(i)[1]).replace(",", "")) for i in range(200)]
        assert sizes == sorted(sizes, reverse=True) and sizes[0] == max(m.size_kb for m in grown)


async def test_new_read_keeps_cursor_and_typing_keeps_the_app_live():
    """A new full read replaces the rows under a kept cursor; while a filter is typed, the App's own
    timers keep firing (the index is built off the UI thread)."""
    app = recorded_app()
    reads = [many_mappings(N), many_mappings(N, grown=frozenset({42})), many_mappings(N - 10, grown=frozenset({42}))]
    samples = samples_of(app, reads)
    async with app.run_test(size=(120, 40)) as pilot:
        app.apply_sample(samples[0])
        await pilot.press("2")
        view = app.query_one(MappingTable)
        table = view.table
        await settled(pilot, view)
        await pilot.press("pagedown", "down")
        kept = view.cursor_key
        app.apply_sample(samples[1])
        await settled(pilot, view)
        assert view.cursor_key == kept
        assert text_of(app.query_one("#mappings-summary")).count("1 growing") == 1

        ticks = []
        timer = app.set_interval(0.01, lambda: ticks.append(1))
        await pilot.press("slash", *"libfoo9")
        await settled(pilot, view)
        timer.stop()
        assert ticks, "the UI thread stopped while the filter was typed"
        assert all("libfoo9" in n for n in shown_names(table, 0, 100))
        assert table.row_count == sum(1 for m in reads[1] if "libfoo9" in m.path)

        app.apply_sample(samples[2])  # 10 fewer mappings, the filter still applies
        await settled(pilot, view)
        assert table.row_count == sum(1 for m in reads[2] if "libfoo9" in m.path)
        assert f"{N - 10} mappings" in text_of(app.query_one("#mappings-summary"))


async def test_target_text_is_shown_as_text():
    """Mapping paths with markup and control characters are drawn as they are, controls escaped."""
    app = recorded_app()
    hostile = ("[bold]x[/]", "/tmp/\x1b[31mred", "/tmp/tab\there\x7f\x9b")
    ms = tuple(Mapping(0x1000 * (i + 1), 0x1000 * (i + 2), "rw-p", 0, "00:00", i, p, size_kb=4, rss_kb=100 - i)
               for i, p in enumerate(hostile))
    async with app.run_test(size=(120, 40)) as pilot:
        app.apply_sample(samples_of(app, [ms])[0])
        await pilot.press("2")
        view = app.query_one(MappingTable)
        await settled(pilot, view)
        lines = [view.table.render_line(y).text for y in range(1, 4)]
        assert "[bold]x[/]" in lines[0]
        assert "\\x1b[31mred" in lines[1] and "\x1b" not in "".join(lines)
        assert "tab\\x09here\\x7f\\x9b" in lines[2]
