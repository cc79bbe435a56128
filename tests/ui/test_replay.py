"""`hftmem replay`: a recording of the real engine, cut by SIGKILL, replayed in the TUI (pilot)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
from textual.widgets import Static

from hftmem_tui.feeds.recording import RecordedFeed
from hftmem_tui.ui.overview_pane import OverviewPane
from hftmem_tui.ui.replay import ReplayApp, ReplayBar
from hftmem_tui.ui.screenshots import RECORDING
from tests.conftest import proc_status, run_cli
from tests.helpers import needs_tmux, spawn_cli, text_of, wait_for_pilot, wait_lines

SIZE = (120, 40)


def verdict_text(app: ReplayApp) -> str:
    return text_of(app.query_one(OverviewPane).query_one("#leak-verdict", Static))


@pytest.mark.slow
async def test_a_recording_cut_by_sigkill_replays_with_the_leak_verdict(engine, tmp_path):
    """Record a leaking engine, SIGKILL the recorder mid-run, replay: the verdict says GROWING."""
    pid = engine("--scenario", "leak")
    out = tmp_path / "leak.jsonl"
    rec = spawn_cli("record", str(pid), "--out", str(out), "--interval", "0.5", "--smaps-every", "4")
    try:
        wait_lines(out, 1 + 56, timeout=60)  # the verdict needs 8 points over 20 s after a 5 s warm-up
        rec.send_signal(signal.SIGKILL)
        rec.wait(timeout=5)
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()
    st = proc_status(pid)
    assert st["TracerPid"] == "0" and not st["State"].startswith("T")

    # Cut the file mid-line too, as a disk-full or a copy in flight would: replay up to the damage.
    damaged = tmp_path / "damaged.jsonl"
    data = out.read_bytes()
    damaged.write_bytes(data[: len(data) - 40])

    for path, notice in ((out, False), (damaged, True)):
        feed = RecordedFeed(str(path))
        assert len(feed.samples) >= 50
        app = ReplayApp(feed)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.cursor.at_end and app.history.samples == len(feed.samples)
            assert "GROWING" in verdict_text(app), verdict_text(app)
            bar = text_of(app.query_one(ReplayBar))
            assert f"sample {len(feed.samples)}/{len(feed.samples)}" in bar
            assert ("damaged recording" in bar) == notice, bar
            assert "end of recording (no end line)" in bar  # SIGKILL: the recorder wrote no end line
            await pilot.press("home")
            await pilot.pause()
            assert app.cursor.index == 0 and "INSUFFICIENT DATA" in verdict_text(app)
    assert proc_status(pid)["TracerPid"] == "0"


async def test_cursor_keys_step_jump_and_play(tmp_path):
    """, . step, [ ] jump a minute, home/end, t goes to a time, space plays at N x, - + speed."""
    feed = RecordedFeed(str(RECORDING))
    n = len(feed.samples)
    app = ReplayApp(feed, at="start")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.cursor.index == 0 and app.history.samples == 1
        await pilot.press("full_stop", "full_stop", "full_stop")
        assert app.cursor.index == 3 and app.history.samples == 4  # stepping folds one sample each
        await pilot.press("comma")
        assert app.cursor.index == 2 and app.history.samples == 3  # back: rebuilt up to the cursor
        await pilot.press("right_square_bracket")
        assert app.cursor.index == n - 1  # the fixture is ~40 s: +60 s lands on the end
        await pilot.press("home")
        assert app.cursor.index == 0
        await pilot.press("t")
        await pilot.pause()
        await pilot.press(*"@10", "enter")
        await pilot.pause()
        assert app.cursor.time - app.cursor.start == pytest.approx(10, abs=1.5)
        await pilot.press("t")
        await pilot.pause()
        await pilot.press(*"soon", "enter")  # refused with a notice, cursor unchanged
        await pilot.pause()
        assert app.cursor.time - app.cursor.start == pytest.approx(10, abs=1.5)
        assert any("soon" in str(n.message) for n in app._notifications)
        for _ in range(5):
            await pilot.press("plus")
        assert app.cursor.speed == 32.0
        at = app.cursor.index
        await pilot.press("space")
        await wait_for_pilot(pilot, lambda: app.cursor.index > at + 3, what="the cursor to play on")  # 32 samples/s
        assert app.cursor.playing or app.cursor.at_end
        if app.cursor.playing:
            await pilot.press("space")
        stopped = app.cursor.index
        await pilot.pause(0.3)  # an absence is watched for a while: about 10 samples at 32 x
        assert not app.cursor.playing and app.cursor.index == stopped
        await pilot.press(*["minus"] * 6)
        assert app.cursor.speed == 0.5
        await pilot.press("end", "space")  # play from the end starts again at the start
        assert app.cursor.playing and app.cursor.index == 0
        await pilot.press("full_stop")  # a step pauses
        assert not app.cursor.playing and app.cursor.index == 1
        assert app.history.samples == app.cursor.index + 1


async def test_live_only_panes_say_so(tmp_path):
    """Memory and audit need a live process: the replay never reads whatever has the recorded pid now."""
    app = ReplayApp(RecordedFeed(str(RECORDING)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        await pilot.pause()
        assert "needs a live process" in text_of(app.query_one("#memory-view", Static))
        await pilot.press("7")
        await pilot.pause()
        assert "needs a live process" in text_of(app.query_one("#audit-summary", Static))


def test_bad_files_are_one_line(tmp_path):
    """Missing, a directory, not a recording, header only, bad --at: one stderr line, exit != 0."""
    header_only = tmp_path / "header.jsonl"
    header_only.write_bytes(Path(RECORDING).read_bytes().split(b"\n")[0] + b"\n")
    not_rec = tmp_path / "notes.txt"
    not_rec.write_text("hello\n")
    truncated_header = tmp_path / "cut.jsonl"
    truncated_header.write_bytes(Path(RECORDING).read_bytes()[:50])
    cases = [
        ((str(tmp_path / "missing.jsonl"),), "missing.jsonl"),
        ((str(tmp_path),), "directory"),
        ((str(not_rec),), "not a hftmem recording"),
        ((str(header_only),), "no sample"),
        ((str(truncated_header),), "truncated"),
        ((str(RECORDING), "--at", "25:99"), "--at"),
        ((str(RECORDING), "--speed", "fast"), "playback speed"),
    ]
    for args, words in cases:
        r = run_cli("replay", *args)
        assert r.returncode != 0, (args, r)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in r.stderr, (args, r.stderr)


@needs_tmux
def test_replay_in_a_real_terminal(tmux):
    """tmux: `hftmem replay FILE` draws the recording's panes and the cursor bar, q quits cleanly."""
    t = tmux(f"TERM=xterm-256color {sys.executable} -m hftmem_tui.cli replay {RECORDING} --at start")
    t.wait_for("sample 1/", "paused", "hftmem-engine", timeout=20)
    t.keys("end")
    t.wait_for("end of recording", "GROWING", timeout=10)
    t.keys("q")
    t.wait_for("EXITED 0", timeout=10)  # the harness's shell prints hftmem's exit status
