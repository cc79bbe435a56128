"""/proc readers: smaps, smaps_rollup, maps, status, stat, numa_maps, tasks, links, system files.

Parsers (``parse_*``) are pure functions of the file text, tested on fixtures captured from
real /proc output. Readers (``read_*``) take the procfs root as an argument and turn OS errors
into the typed errors of :mod:`hftmem_tui.errors` at this one boundary (:mod:`.core`).

Cost to the target: status and stat are counters (no page-table walk, cheap at any rate);
smaps, smaps_rollup and numa_maps walk the target's page tables under its mmap lock, so the
sampler must read them slowly or on demand. A /proc read is a syscall that cannot be given a
timeout; its cost is bounded by the walk, which the caller measures and schedules.

One module per file family: core (root, paths, errors, read_text), maps (smaps, maps,
smaps_rollup, numa_maps), status (status, stat, scheduling, check_target), tasks (threads,
comm, links, oom_score_adj), system (system-wide files and hftmem's own). Import the names
from here: ``from hftmem_tui.sources import procfs; procfs.read_status(pid)``.
"""

from __future__ import annotations

from hftmem_tui.sources.procfs.core import (
    PERMISSION_HINT,
    PROCFS,
    os_error,
    pid_path,
    process_alive,
    read_text,
)
from hftmem_tui.sources.procfs.maps import (
    Mapping,
    NumaNode,
    Rollup,
    parse_maps,
    parse_numa_maps,
    parse_smaps,
    parse_smaps_rollup,
    read_maps,
    read_numa_maps,
    read_smaps,
    read_smaps_rollup,
)
from hftmem_tui.sources.procfs.status import (
    PF_KTHREAD,
    SCHED_POLICIES,
    SCHED_RESET_ON_FORK,
    SchedInfo,
    Stat,
    Status,
    check_target,
    parse_stat,
    parse_status,
    read_sched,
    read_stat,
    read_status,
)
from hftmem_tui.sources.procfs.system import (
    boot_id,
    own_cap_effective,
    own_mounts,
    read_system,
    read_system_int,
)
from hftmem_tui.sources.procfs.tasks import (
    exe_identity,
    list_tasks,
    read_comm,
    read_link,
    read_task_stat,
    set_oom_score_adj,
    task_alive,
)

__all__ = [
    "PERMISSION_HINT", "PF_KTHREAD", "PROCFS", "SCHED_POLICIES", "SCHED_RESET_ON_FORK",
    "Mapping", "NumaNode", "Rollup", "SchedInfo", "Stat", "Status",
    "boot_id", "check_target", "exe_identity", "list_tasks", "os_error", "own_cap_effective",
    "own_mounts", "parse_maps", "parse_numa_maps", "parse_smaps", "parse_smaps_rollup",
    "parse_stat", "parse_status", "pid_path", "process_alive", "read_comm", "read_link",
    "read_maps", "read_numa_maps", "read_sched", "read_smaps", "read_smaps_rollup", "read_stat",
    "read_status", "read_system", "read_system_int", "read_task_stat", "read_text",
    "set_oom_score_adj", "task_alive",
]
