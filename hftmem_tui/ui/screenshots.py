"""Regenerate screenshots/*.svg, one per pane, from the committed recording (deterministic).

    python -m hftmem_tui.ui.screenshots [--out screenshots] [--size 120x40]

The app runs on a RecordedFeed with its sampler thread off; every recorded sample is applied
in order, so each screenshot shows the same data on every run (times are shown in UTC).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "tests" / "fixtures" / "recordings" / "leak_40s.jsonl"
SIZE = (120, 40)


def use_utc() -> None:
    """Clock times on screen (leak since, smaps read at) in UTC, so screenshots do not depend on TZ."""
    os.environ["TZ"] = "UTC"
    time.tzset()


def recorded_app(recording: str | Path = RECORDING, **kw):
    """An HftmemApp on the recording and its refusing services, sampler thread off (call
    ``replay_all`` once it runs)."""
    from hftmem_tui.feeds.recording import RecordedFeed
    from hftmem_tui.services import RecordedServices
    from hftmem_tui.ui.app import HftmemApp

    feed = RecordedFeed(str(recording))
    return HftmemApp(feed, services=RecordedServices(feed.start()), refresh_s=feed.interval_s, sampling=False, **kw)


def replay_all(app) -> None:
    """Apply every recorded sample, oldest first (what the sampler thread would have posted)."""
    for s in app.feed.samples:
        app.apply_sample(s)


async def capture(out: Path, size: tuple[int, int] = SIZE) -> list[Path]:
    from hftmem_tui.ui.app import PANES

    app = recorded_app()
    app.animation_level = "none"  # the tab underline slides: a screenshot mid-slide would differ per run
    written = []
    async with app.run_test(size=size) as pilot:
        replay_all(app)
        await pilot.pause()
        for pane_id, _ in PANES:
            app.show_pane(pane_id)
            for _ in range(3):  # focus moves, then the footer recomputes its bindings
                await pilot.pause(0.1)
            path = out / f"{pane_id}.svg"
            app.save_screenshot(filename=path.name, path=str(out))
            written.append(path)
    return written


def recorded_tour_app(progress_path: Path, recording: str | Path = RECORDING):
    """`hftmem demo`'s TourApp on the recording (an engine with the leak on), sampler thread off;
    its services refuse scenario switches and watchpoints (the recorded engine is gone).

    ``progress_path``: where the tour saves its progress (a temporary file: never the user's).
    """
    from hftmem_tui.feeds.recording import RecordedFeed
    from hftmem_tui.services import RecordedServices
    from hftmem_tui.ui.demo_app import TourApp

    feed = RecordedFeed(str(recording))
    return TourApp(feed, services=RecordedServices(feed.start()), start="leak", progress_path=progress_path,
                   refresh_s=feed.interval_s, sampling=False)


def replay_tour(app) -> None:
    """Mark the leak chapter's bug on in the panel only (a recording cannot be switched), then replay:
    "observed" comes from the chapter's own predicate over the recorded samples."""
    app.tour.state.switch_on()
    replay_all(app)


async def capture_tour(out: Path, size: tuple[int, int] = SIZE) -> Path:
    """screenshots/tour.svg: the tour panel beside the overview, leak chapter observed."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hftmem-shots-") as tmp:
        app = recorded_tour_app(Path(tmp) / "tour.json")
        app.animation_level = "none"
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            replay_tour(app)
            for _ in range(3):
                await pilot.pause(0.1)
            app.save_screenshot(filename="tour.svg", path=str(out))
    return out / "tour.svg"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hftmem_tui.ui.screenshots", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "screenshots"), help="directory for the SVG files")
    p.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}", help="terminal size COLSxROWS (default 120x40)")
    args = p.parse_args(argv)
    try:
        cols, rows = (int(x) for x in args.size.lower().split("x"))
    except ValueError:
        sys.stderr.write(f"screenshots: --size takes COLSxROWS, not '{args.size}'\n")
        return 2
    use_utc()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(capture(out, (cols, rows))):
        print(path)
    print(asyncio.run(capture_tour(out, (cols, rows))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
