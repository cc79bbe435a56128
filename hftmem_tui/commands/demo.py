"""`hftmem demo`: the guided tour, headless with --script (CI, slow links), else the TUI with a tour panel."""

from __future__ import annotations

import argparse

from hftmem_tui.demo.chapters import CHAPTERS, find_chapter


def run(args: argparse.Namespace) -> int:
    """Run the tour; with --script, 0 only when every chapter was observed.

    Raises SourceError when the demo engine cannot be built, started or read.
    """
    if args.script:
        from hftmem_tui.commands.progress_line import ProgressLine
        from hftmem_tui.demo.script import run_script

        chapters = [find_chapter(args.chapter)] if args.chapter else list(CHAPTERS)
        line = ProgressLine()
        try:
            return run_script(chapters, out=lambda text: print(text, flush=True), status=line)
        finally:
            line.clear()
    from hftmem_tui.ui.demo_app import run_tour  # the TUI: loaded only without --script

    return run_tour(start=args.chapter, refresh_s=args.refresh)
