"""`hftmem replay FILE`: the attach TUI, offline, on a recording, with a time cursor."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Run the replay TUI. Raises RecordingError (bad file, bad --at) before the terminal is touched."""
    from hftmem_tui.ui.replay import run_replay

    return run_replay(args.file, at=args.at, speed=args.speed, play=args.play, graph_style=args.graph)
