"""/proc/PID/status and /proc/PID/stat (of a process or of one of its threads): parsed and read.

Both are counters the kernel keeps: reading them walks no page table, cheap at any rate.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from hftmem_tui.errors import AccessDenied, KernelThread, NoSuchProcess, ZombieProcess
from hftmem_tui.sources.procfs.core import PERMISSION_HINT, PROCFS, os_error, pid_path, read_text

PF_KTHREAD = 0x00200000
SCHED_RESET_ON_FORK = 0x40000000


@dataclass(frozen=True, slots=True)
class Status:
    """/proc/PID/status (the cheap counters: read VmRSS here at the refresh rate)."""

    name: str
    state: str
    tgid: int
    ppid: int
    tracer_pid: int
    uid: int
    vm_peak_kb: int = 0
    vm_size_kb: int = 0
    vm_hwm_kb: int = 0
    vm_rss_kb: int = 0
    rss_anon_kb: int = 0
    rss_file_kb: int = 0
    rss_shmem_kb: int = 0
    vm_swap_kb: int = 0
    vm_lck_kb: int = 0
    vm_pte_kb: int = 0
    threads: int = 0
    voluntary_ctxt_switches: int = 0
    nonvoluntary_ctxt_switches: int = 0
    cpus_allowed_list: str = ""
    has_mm: bool = True       # False when the Vm* lines are absent (kernel thread or zombie)
    kthread: bool | None = None  # the "Kthread:" line (kernels >= 6.x), None when absent

    @property
    def is_zombie(self) -> bool:
        return self.state == "Z"

    @property
    def is_kernel_thread(self) -> bool:
        """From the Kthread line when the kernel prints it, else "no mm and not exiting"."""
        if self.kthread is not None:
            return self.kthread
        return not self.has_mm and self.state not in ("Z", "X")


_STATUS_INT_KB = {
    "VmPeak": "vm_peak_kb", "VmSize": "vm_size_kb", "VmHWM": "vm_hwm_kb", "VmRSS": "vm_rss_kb",
    "RssAnon": "rss_anon_kb", "RssFile": "rss_file_kb", "RssShmem": "rss_shmem_kb",
    "VmSwap": "vm_swap_kb", "VmLck": "vm_lck_kb", "VmPTE": "vm_pte_kb",
}
_STATUS_INT = {
    "Tgid": "tgid", "PPid": "ppid", "TracerPid": "tracer_pid", "Threads": "threads",
    "voluntary_ctxt_switches": "voluntary_ctxt_switches",
    "nonvoluntary_ctxt_switches": "nonvoluntary_ctxt_switches",
}


@dataclass(frozen=True, slots=True)
class Stat:
    """/proc/PID/stat (field numbers from proc(5))."""

    pid: int
    comm: str
    state: str
    ppid: int
    flags: int
    minflt: int
    cminflt: int
    majflt: int
    cmajflt: int
    utime_ticks: int
    stime_ticks: int
    nice: int
    num_threads: int
    starttime_ticks: int
    vsize_bytes: int
    rss_pages: int
    processor: int
    rt_priority: int
    policy: int

    @property
    def is_kernel_thread(self) -> bool:
        return bool(self.flags & PF_KTHREAD)

    @property
    def is_zombie(self) -> bool:
        return self.state == "Z"


SCHED_POLICIES = {0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR", 3: "SCHED_BATCH",
                  5: "SCHED_IDLE", 6: "SCHED_DEADLINE"}


@dataclass(frozen=True, slots=True)
class SchedInfo:
    """Scheduling of the target: an HFT engine usually pins threads and may run SCHED_FIFO."""

    policy: str
    rt_priority: int
    nice: int
    affinity: frozenset[int]


def parse_status(text: str) -> Status:
    """Parse /proc/PID/status. Raises ValueError if Name/State are missing (not a status file)."""
    fields: dict[str, object] = {}
    has_mm = False
    kthread: bool | None = None
    for line in text.split("\n"):
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        if key in _STATUS_INT_KB:
            fields[_STATUS_INT_KB[key]] = int(rest.split()[0])
            has_mm = True
        elif key in _STATUS_INT:
            fields[_STATUS_INT[key]] = int(rest)
        elif key == "Name":
            fields["name"] = rest.strip()
        elif key == "State":
            fields["state"] = rest.strip()[:1]
        elif key == "Uid":
            fields["uid"] = int(rest.split()[0])
        elif key == "Cpus_allowed_list":
            fields["cpus_allowed_list"] = rest.strip()
        elif key == "Kthread":
            kthread = rest.strip() == "1"
    if "name" not in fields or "state" not in fields:
        raise ValueError("not a /proc/PID/status text (no Name or State line)")
    fields.setdefault("tgid", 0)
    fields.setdefault("ppid", 0)
    fields.setdefault("tracer_pid", 0)
    fields.setdefault("uid", -1)
    return Status(**fields, has_mm=has_mm, kthread=kthread)  # type: ignore[arg-type]


def parse_stat(text: str) -> Stat:
    """Parse /proc/PID/stat; comm may hold spaces and ')', so split at the LAST ')'."""
    lpar = text.index("(")
    rpar = text.rindex(")")
    f = text[rpar + 2:].split()  # f[0] is field 3 (state): field n is f[n - 3]
    return Stat(
        pid=int(text[:lpar]), comm=text[lpar + 1:rpar], state=f[0], ppid=int(f[1]),
        flags=int(f[6]), minflt=int(f[7]), cminflt=int(f[8]), majflt=int(f[9]),
        cmajflt=int(f[10]), utime_ticks=int(f[11]), stime_ticks=int(f[12]), nice=int(f[16]),
        num_threads=int(f[17]), starttime_ticks=int(f[19]), vsize_bytes=int(f[20]),
        rss_pages=int(f[21]), processor=int(f[36]), rt_priority=int(f[37]),
        policy=int(f[38]) & ~SCHED_RESET_ON_FORK,
    )


# --------------------------------------------------------------------------- readers

def read_stat(pid: int, procfs: str = PROCFS) -> Stat:
    """/proc/PID/stat. Raises NoSuchProcess, AccessDenied."""
    text = read_text(pid, "stat", procfs)
    if not text:
        raise NoSuchProcess(pid, "exited while reading")
    return parse_stat(text)


def read_status(pid: int, procfs: str = PROCFS) -> Status:
    """/proc/PID/status. Raises NoSuchProcess, AccessDenied."""
    text = read_text(pid, "status", procfs)
    if not text:
        raise NoSuchProcess(pid, "exited while reading")
    return parse_status(text)


def read_sched(pid: int, procfs: str = PROCFS) -> SchedInfo:
    """Policy, RT priority, nice and CPU affinity. Raises NoSuchProcess, AccessDenied."""
    st = read_stat(pid, procfs)
    try:
        try:
            policy = os.sched_getscheduler(pid)
            rt_priority = os.sched_getparam(pid).sched_priority
        except OSError as e:
            if e.errno != errno.EINVAL:  # SCHED_DEADLINE tasks refuse the old API: use stat
                raise
            policy, rt_priority = st.policy, st.rt_priority
        affinity = frozenset(os.sched_getaffinity(pid))
    except ProcessLookupError as e:
        raise NoSuchProcess(pid) from e
    except PermissionError as e:
        raise AccessDenied(pid, "scheduling parameters", PERMISSION_HINT) from e
    policy &= ~SCHED_RESET_ON_FORK
    return SchedInfo(SCHED_POLICIES.get(policy, f"policy {policy}"), rt_priority, st.nice, affinity)


def check_target(pid: int, procfs: str = PROCFS) -> Status:
    """Check that pid is a live user process whose memory we may read; return its status.

    Raises NoSuchProcess, KernelThread, ZombieProcess, or AccessDenied (cannot open smaps).
    Opening smaps_rollup checks ptrace read access without walking page tables (no read).
    """
    if pid <= 0:
        raise NoSuchProcess(pid, "pids are positive")
    st = read_stat(pid, procfs)
    if st.is_kernel_thread:
        raise KernelThread(pid)
    if st.state in ("Z", "X"):
        raise ZombieProcess(pid)
    status = read_status(pid, procfs)
    path = pid_path(pid, "smaps_rollup", procfs)
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise os_error(e, pid, "smaps", "open", path) from e
    if status.state == "Z":  # became a zombie between the two reads
        raise ZombieProcess(pid)
    return status
