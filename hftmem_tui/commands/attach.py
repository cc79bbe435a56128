"""`hftmem attach PID`: check the target and start the sampler before the TUI, then run it.

Everything that can fail on bad input (no such pid, permission, zombie, a bad --allocators
file) fails here, as a SourceError the CLI prints in one line, before the terminal is touched.
"""

from __future__ import annotations

import argparse

from hftmem_tui.model.allocconfig import load_allocators
from hftmem_tui.feeds.sampler import LiveSampler
from hftmem_tui.services import LiveServices

# 1 s: status/stat/psutil + smaps_rollup + the engine block cost ~2-4 ms per sample here, and
# Textual redraws one pane per tick: well under 3% of a core. Faster refreshes cost linearly.
DEFAULT_REFRESH_S = 1.0
# Full smaps (every mapping) every 5 samples, under the sampler's 1% cost budget.
SMAPS_EVERY = 5


def run_attach(pid: int, *, refresh_s: float = DEFAULT_REFRESH_S, graph_style: str = "braille",
               perf: bool = True, allocators_file: str | None = None) -> int:
    """Run the TUI on ``pid`` until the user quits. Raises SourceError before the TUI starts."""
    from hftmem_tui.ui.app import HftmemApp

    specs = load_allocators(allocators_file) if allocators_file else None
    sampler = LiveSampler(pid, interval_s=refresh_s, smaps_every=SMAPS_EVERY, perf=perf, allocators=specs)
    info = sampler.start()  # in the main thread: perf dies with it (PR_SET_PDEATHSIG)
    app = HftmemApp(sampler, services=LiveServices(info), refresh_s=refresh_s, graph_style=graph_style,
                    allocators=specs)
    try:
        app.run()
    finally:
        app.run_exit_hooks()  # idempotent: covers a crash that bypassed exit()
    return int(app.return_code or 0)


def run(args: argparse.Namespace) -> int:
    """`hftmem attach` from parsed arguments; see :func:`run_attach`."""
    return run_attach(args.pid, refresh_s=args.refresh, graph_style=args.graph, perf=not args.no_perf,
                      allocators_file=args.allocators)
