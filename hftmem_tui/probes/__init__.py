"""Allocation probes, a headless feature: which allocator entry points to probe in a target,
per-thread call counters on them, and call chains of the first offenders on hot threads.

Used by ``hftmem allocs`` (commands/allocs.py) and the Allocs pane alike. The uprobe mechanism
itself (tracefs, probe groups, their perf events, the guardian) is sources/perf/uprobes.py; the
cost of one probed call is sources/perf/calibration.py.
"""

from hftmem_tui.probes.alloc_probes import AllocProbes
from hftmem_tui.probes.offenders import Offender
from hftmem_tui.probes.plan import ALLOC_FUNCTIONS, ProbeSpec, plan_alloc_probes
from hftmem_tui.probes.threads import thread_cpu_ticks

__all__ = ["ALLOC_FUNCTIONS", "AllocProbes", "Offender", "ProbeSpec", "plan_alloc_probes", "thread_cpu_ticks"]
