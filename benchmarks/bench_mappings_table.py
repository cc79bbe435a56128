"""Per-key latency of the Mappings pane at 100,000 mappings (median and worst), in one run.

    .venv/bin/python benchmarks/bench_mappings_table.py [--mappings 100000] [--rounds 3] [--old 5000]

The App runs headless in-process (App.run_test, 120x40, animations off) on the committed
recording with its sampler off; two generated full smaps reads of ``--mappings`` mappings are
applied, as the sampler thread would post them. Each key is pressed as a user would (pilot),
and its latency is the time from the key until the first frame the compositor draws after the
pane reached the key's result (the index swapped in, the cursor moved): pane switch (2), sort
(s), reverse (r), every keystroke of a 13-character filter typed at 8 keys/s, clear (Esc),
PgDn/End/Home (``--gc-freeze``: the same after gc.freeze(), to size the garbage collector's
share). While the filter is typed a 20 ms interval timer stands in for the header clock:
its longest gap is how long the screen stopped updating. ``--old N`` also times the pre-RowTable
pane (a DataTable, from git) at N mappings, for comparison (0: skip; it is slow at 100k).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hftmem_tui.sources.procfs import Mapping  # noqa: E402
from hftmem_tui.ui.screenshots import recorded_app  # noqa: E402

FILTER = "libfoo12.so.3"
OLD_COMMIT = "4a41f1b"  # main before the RowTable: the DataTable pane
VERBOSE = False


def many_mappings(n: int, grown: frozenset[int] = frozenset()) -> tuple[Mapping, ...]:
    """``n`` mappings in address order (libraries, anonymous areas, [heap], [stack])."""
    out = []
    for i in range(n):
        path = ("[heap]" if i == 1 else "[stack]" if i == n - 1 else
                "" if i % 3 == 0 else f"/usr/lib/x86_64-linux-gnu/libfoo{i % 997}.so.{i % 7}")
        rss = (i * 7919) % 65_521 + (70_000 if i in grown else 0)
        out.append(Mapping(0x7f0000000000 + i * 0x10000, 0x7f0000000000 + i * 0x10000 + 0x8000,
                           "rw-p" if i % 2 else "r-xp", 0, "00:00", i, path, size_kb=32 + i % 5000,
                           rss_kb=rss, private_dirty_kb=rss // (1 + i % 4)))
    return tuple(out)


class Frames:
    """Times of the frames the compositor produces (App._display is called even headless)."""

    def __init__(self, app) -> None:
        self.times: list[float] = []
        inner = app._display

        def display(screen, renderable):
            self.times.append(time.perf_counter())
            return inner(screen, renderable)

        app._display = display


async def timed(pilot, frames: Frames, key: str, done, timeout: float = 300.0) -> float:
    """Seconds from pressing ``key`` to the first frame after ``done()`` became true."""
    t0 = time.perf_counter()
    press = asyncio.ensure_future(pilot.press(key))
    reached = None
    while True:
        if reached is None and done():
            reached = time.perf_counter()
        if reached is not None:
            first = next((f for f in frames.times if f >= reached), None)
            if first is not None:
                break
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"key {key!r}: no result in {timeout} s")
        await asyncio.sleep(0.001)
    await press
    if VERBOSE:
        print(f"    {key!r}: {(first - t0) * 1000:.1f} ms", flush=True)
    return first - t0


def load_old_pane():
    """The DataTable MappingTable as it was before this change (from git), as a module."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{OLD_COMMIT}:hftmem_tui/ui/mappings_pane.py"],
                            capture_output=True, text=True, check=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("old_mappings_pane", f.name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    os.unlink(f.name)
    return module


async def run(n: int, rounds: int, old: bool, freeze: bool = False) -> dict[str, list[float]]:
    import hftmem_tui.ui.app as app_module

    if old:
        app_module.MappingTable = load_old_pane().MappingTable
    table_cls = app_module.MappingTable
    app = recorded_app()
    app.animation_level = "none"
    reads = [many_mappings(n), many_mappings(n, grown=frozenset({5, 6, n // 2}))]
    lat: dict[str, list[float]] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        frames = Frames(app)
        for s, ms in zip(app.feed.samples, reads, strict=False):
            app.apply_sample(replace(s, mappings=ms))
        del reads, ms  # what the App keeps is what a live session keeps
        if freeze:  # what an App-level policy could do after each full read: the GC stops re-scanning it
            gc.freeze()
        view = app.query_one(table_cls)
        table = view.table

        def idle() -> bool:
            return not getattr(view, "building", False)

        for r in range(rounds):
            await pilot.press("1")
            await pilot.pause(0.2)
            lat.setdefault("pane switch (2)", []).append(
                await timed(pilot, frames, "2", lambda: app.active_pane == "mappings" and idle() and table.row_count == n))
            for key in ("s", "r"):
                before = (view.sort_column, view.sort_reverse)
                lat.setdefault(f"sort ({key})", []).append(
                    await timed(pilot, frames, key, lambda: (view.sort_column, view.sort_reverse) != before and idle()))
            await pilot.press("slash")
            ticks: list[float] = []
            clock = app.set_interval(0.02, lambda: ticks.append(time.perf_counter()))
            for i, ch in enumerate(FILTER):
                want = FILTER[: i + 1]
                t = await timed(pilot, frames, ch, lambda w=want: view.filter_text == w and idle())
                lat.setdefault("filter keystroke", []).append(t)
                await asyncio.sleep(max(0.0, 0.125 - t))  # 8 keys/s
                if old and i >= 1:
                    break  # the DataTable takes seconds per key: two are enough
            clock.stop()
            gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
            lat.setdefault("longest clock gap while typing", []).append(max(gaps) if gaps else float("nan"))
            await pilot.press("enter")
            lat.setdefault("clear filter (Esc)", []).append(
                await timed(pilot, frames, "escape", lambda: view.filter_text == "" and idle() and table.row_count == n))
            if old:
                break  # the DataTable's scroll keys are not what froze
            for key in ("pagedown", "end", "home"):
                before = table.cursor_row if hasattr(table, "cursor_row") else table.cursor_coordinate.row
                row = (lambda: table.cursor_row) if hasattr(table, "cursor_row") else (lambda: table.cursor_coordinate.row)
                lat.setdefault(f"scroll ({key})", []).append(
                    await timed(pilot, frames, key, lambda b=before, k=key: row() != b or (k == "home" and b == 0)))
    return lat


def report(title: str, lat: dict[str, list[float]]) -> None:
    print(title)
    for name, values in lat.items():
        print(f"  {name:<32} median {statistics.median(values) * 1000:8.1f} ms   worst {max(values) * 1000:8.1f} ms"
              f"   (n={len(values)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mappings", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3, help="times the whole key sequence runs (default 3)")
    ap.add_argument("--old", type=int, default=0, metavar="N",
                    help="also time the DataTable pane at N mappings (default 0: skip)")
    ap.add_argument("--gc-freeze", action="store_true",
                    help="gc.freeze() once the reads are applied (an App-level GC policy, for comparison)")
    args = ap.parse_args()
    report(f"Mappings pane (RowTable), {args.mappings:,} mappings, 120x40{', gc.freeze()' if args.gc_freeze else ''}:",
           asyncio.run(run(args.mappings, args.rounds, old=False, freeze=args.gc_freeze)))
    if args.old:
        global VERBOSE
        VERBOSE = True  # each key as it is measured: the DataTable may take minutes
        report(f"Mappings pane (DataTable, before), {args.old:,} mappings, 120x40:",
               asyncio.run(run(args.old, 1, old=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
