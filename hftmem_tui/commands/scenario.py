"""`hftmem scenario PID`: switch a running demo engine's scenarios on or off and print its state."""

from __future__ import annotations

import argparse

from hftmem_tui.sources.engine import SCENARIOS, EngineControl


def run(args: argparse.Namespace) -> int:
    """Apply --on then --off through the control socket; one status line. Raises SourceError."""
    ctl = EngineControl(args.pid, name=args.control)
    for name in args.on:
        ctl.set_scenario(name, True)
    for name in args.off:
        ctl.set_scenario(name, False)
    st = ctl.status()
    active = ",".join(s for s in SCENARIOS if s in st.scenarios) or "-"
    print(f"pid={st.pid} scenarios={active} ticks={st.ticks} messages={st.messages}")
    return 0
