"""Facts for the readiness audit: what an HFT engineer checks by hand before trusting a box.

Everything comes from /proc and /sys, zero-stop: status, stat and limits of the process and of
each of its threads (counters, no page-table walk), smaps_rollup and numa_maps (one walk each,
read once per audit, never at the refresh rate), maps (no walk), and the system settings
(transparent huge pages, isolcpus / nohz_full, NUMA nodes, RT throttling). A missing or
unreadable *system* file becomes None ("unknown" in the audit), never an exception; only the
target itself vanishing or refusing us raises, as the typed errors of every other source.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from hftmem_tui.sources import procfs
from hftmem_tui.errors import AccessDenied, NoSuchProcess, SourceError

SYSFS = "/sys"
THP_DIR = "kernel/mm/transparent_hugepage"
MAX_THREADS = 512  # a thread-per-connection server could have thousands: read the first ones only


@dataclass(frozen=True, slots=True)
class HistorySample:
    """One cheap reading of the target (status + stat), for the checks that need a trend."""

    t: float  # seconds, monotonic or epoch: only differences matter
    vm_rss_kb: int
    majflt: int


@dataclass(frozen=True, slots=True)
class ThreadFacts:
    """One thread of the target: where it may run, how it is scheduled, how busy it has been."""

    tid: int
    comm: str
    policy: str  # SCHED_OTHER, SCHED_FIFO, ...
    rt_priority: int
    nice: int
    cpus: frozenset[int]
    cpu_ticks: int  # utime + stime since the thread started


@dataclass(frozen=True, slots=True)
class MappingNuma:
    """Resident pages of one mapping per NUMA node (from numa_maps)."""

    start: int
    path: str
    kb_per_node: tuple[tuple[int, int], ...]  # (node, kB), sorted by node

    @property
    def kb(self) -> int:
        return sum(kb for _, kb in self.kb_per_node)


@dataclass(frozen=True, slots=True)
class ReadinessFacts:
    """Everything the audit needs, read once. None means "could not tell" (file missing)."""

    pid: int
    comm: str
    time: float
    age_s: float | None  # seconds since the process started
    # memory
    vm_rss_kb: int
    vm_lck_kb: int
    vm_swap_kb: int
    hugetlb_kb: int | None  # HugetlbPages of /proc/PID/status (kernel >= 4.4)
    anon_huge_kb: int | None  # AnonHugePages of smaps_rollup (THP in use)
    memlock_limit: str | None  # soft "Max locked memory" of /proc/PID/limits ("unlimited" or bytes)
    hugetlbfs_mappings: tuple[str, ...]  # paths of mappings backed by hugetlbfs / MAP_HUGETLB
    thp_enabled: str | None  # the bracketed choice of .../transparent_hugepage/enabled
    thp_defrag: str | None
    thp_process: bool | None  # THP_enabled of status (prctl PR_SET_THP_DISABLE clears it)
    system_swap_kb: int | None  # SwapTotal of /proc/meminfo
    system_hugepages: int | None  # HugePages_Total of /proc/meminfo
    # NUMA
    numa_nodes: tuple[int, ...] | None  # online nodes; None: no NUMA support in this kernel
    numa_mappings: tuple[MappingNuma, ...]  # mappings with resident pages (empty if one node)
    # faults and growth
    majflt: int
    history: tuple[HistorySample, ...]
    # CPUs and scheduling
    online_cpus: frozenset[int] | None
    isolated_cpus: frozenset[int] | None  # /sys/devices/system/cpu/isolated (or isolcpus=)
    nohz_full_cpus: frozenset[int] | None
    cmdline_isolcpus: str | None  # isolcpus=... as given on /proc/cmdline, None when absent
    cmdline_nohz_full: str | None
    rt_runtime_us: int | None  # /proc/sys/kernel/sched_rt_runtime_us (-1: no RT throttling)
    threads: tuple[ThreadFacts, ...]
    threads_total: int  # may exceed len(threads) (MAX_THREADS)


# --------------------------------------------------------------------------- parsers


def parse_cpu_list(text: str) -> frozenset[int]:
    """ "0-3,8,10-11" -> {0,1,2,3,8,10,11}; empty text -> empty set. Raises ValueError."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if sep:
            hi, _, stride = hi.partition(":")  # "0-7:2" strides exist in cpulist syntax
            cpus.update(range(int(lo), int(hi) + 1, int(stride) if stride else 1))
        else:
            cpus.add(int(lo))
    return frozenset(cpus)


def parse_bracketed(text: str) -> str | None:
    """The selected word of a sysfs choice file: "always [madvise] never" -> "madvise"."""
    start, end = text.find("["), text.find("]")
    if start < 0 or end < start:
        return text.strip() or None
    return text[start + 1:end]


def parse_cmdline_param(cmdline: str, name: str) -> str | None:
    """The value of ``name=`` on the kernel command line (the last one wins, like the kernel)."""
    value = None
    for word in cmdline.split():
        if word == "--":
            break  # what follows goes to init, not the kernel
        key, sep, val = word.partition("=")
        if sep and key == name:
            value = val
    return value


def cmdline_cpus(value: str | None) -> frozenset[int] | None:
    """CPUs of an isolcpus=/nohz_full= value, skipping flags ("domain,managed_irq,2-3")."""
    if value is None:
        return None
    cpus: set[int] = set()
    for part in value.split(","):
        if part[:1].isdigit():
            try:
                cpus |= parse_cpu_list(part)
            except ValueError:
                continue
    return frozenset(cpus)


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as {key: number} (kB for the kB lines, a count for HugePages_*)."""
    out = {}
    for line in text.split("\n"):
        key, sep, rest = line.partition(":")
        if sep and rest.split():
            try:
                out[key] = int(rest.split()[0])
            except ValueError:
                continue
    return out


def parse_limits_memlock(text: str) -> str | None:
    """Soft "Max locked memory" of /proc/PID/limits: "unlimited" or a byte count as text."""
    for line in text.split("\n"):
        if line.startswith("Max locked memory"):
            parts = line[len("Max locked memory"):].split()
            return parts[0] if parts else None
    return None


def parse_numa_maps_per_mapping(text: str) -> tuple[MappingNuma, ...]:
    """One MappingNuma per numa_maps line with resident pages (N<node>=<pages> counts)."""
    out = []
    for line in text.split("\n"):
        tokens = line.split()
        if len(tokens) < 2:
            continue
        page_kb = 4
        path = ""
        counts = []
        for tok in tokens[2:]:
            key, _, val = tok.partition("=")
            if key[:1] == "N" and key[1:].isdigit() and val.isdigit():
                counts.append((int(key[1:]), int(val)))
            elif key == "kernelpagesize_kB" and val.isdigit():
                page_kb = int(val)
            elif key == "file":
                path = val
            elif key in ("heap", "stack"):
                path = f"[{key}]"
        if counts:
            try:
                start = int(tokens[0], 16)
            except ValueError:
                continue
            out.append(MappingNuma(start, path, tuple(sorted((n, p * page_kb) for n, p in counts))))
    return tuple(out)


def _is_hugetlb_path(path: str, mounts: Sequence[str]) -> bool:
    if path.startswith("/anon_hugepage"):  # MAP_HUGETLB anonymous memory
        return True
    return any(path.startswith(m.rstrip("/") + "/") for m in mounts)


def parse_hugetlbfs_mounts(text: str) -> tuple[str, ...]:
    """Mount points of hugetlbfs in /proc/mounts text."""
    return tuple(parts[1] for parts in (line.split() for line in text.split("\n"))
                 if len(parts) > 2 and parts[2] == "hugetlbfs")


# --------------------------------------------------------------------------- readers


def _read(path: str) -> str | None:
    """A /sys file's text, or None when it is missing or unreadable (old kernel, container)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def _read_proc(pid: int, name: str, proc: str) -> str | None:
    """/proc/PID/<name> (limits), or None when it cannot be read: an unknown, not an error."""
    try:
        return procfs.read_text(pid, name, proc)
    except SourceError:
        return None


def _status_value(text: str, key: str) -> str | None:
    for line in text.split("\n"):
        k, sep, rest = line.partition(":")
        if sep and k == key:
            return rest.strip()
    return None


def _kb(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.split()[0])
    except (ValueError, IndexError):
        return None


def _thread_facts(pid: int, tid: int, proc: str) -> ThreadFacts | None:
    """None when the thread exited while we looked (threads come and go)."""
    try:
        st = procfs.read_task_stat(pid, tid, proc)
        status_text = procfs.read_text(pid, f"task/{tid}/status", proc)
    except (NoSuchProcess, ValueError):
        return None
    cpus_text = _status_value(status_text, "Cpus_allowed_list")
    try:
        cpus = parse_cpu_list(cpus_text) if cpus_text else frozenset()
    except ValueError:
        cpus = frozenset()
    policy = procfs.SCHED_POLICIES.get(st.policy, f"policy {st.policy}")
    return ThreadFacts(tid, st.comm, policy, st.rt_priority, st.nice, cpus, st.utime_ticks + st.stime_ticks)


def read_threads(pid: int, proc: str = procfs.PROCFS, limit: int = MAX_THREADS) -> tuple[tuple[ThreadFacts, ...], int]:
    """(first ``limit`` threads by tid, total thread count). Raises NoSuchProcess, AccessDenied."""
    try:
        tids = procfs.list_tasks(pid, proc)
    except AccessDenied as e:
        raise AccessDenied(pid, "threads", procfs.PERMISSION_HINT) from e
    out = []
    for tid in tids[:limit]:
        facts = _thread_facts(pid, tid, proc)
        if facts is not None:
            out.append(facts)
    return tuple(out), len(tids)


def read_history_sample(pid: int, proc: str = procfs.PROCFS, now: float | None = None) -> HistorySample:
    """One cheap (t, VmRSS, majflt) reading: status and stat are counters, no page-table walk."""
    status = procfs.read_status(pid, proc)
    stat = procfs.read_stat(pid, proc)
    return HistorySample(time.monotonic() if now is None else now, status.vm_rss_kb, stat.majflt)


def sample_history(pid: int, seconds: float, interval: float = 0.25,
                   proc: str = procfs.PROCFS) -> tuple[HistorySample, ...]:
    """Readings every ``interval`` for ``seconds`` (for the headless audit; the TUI keeps its own)."""
    out = [read_history_sample(pid, proc)]
    deadline = out[0].t + seconds
    while out[-1].t < deadline:
        time.sleep(min(interval, max(0.0, deadline - out[-1].t)))
        out.append(read_history_sample(pid, proc))
    return tuple(out)


def _age_s(stat: procfs.Stat, proc: str) -> float | None:
    uptime = procfs.read_system("uptime", proc)
    try:
        hz = os.sysconf("SC_CLK_TCK")
        return max(0.0, float(uptime.split()[0]) - stat.starttime_ticks / hz) if uptime else None
    except (ValueError, OSError, IndexError):
        return None


def read_facts(pid: int, history: Sequence[HistorySample] = (), *, proc: str = procfs.PROCFS,
               sys: str = SYSFS) -> ReadinessFacts:
    """Gather every readiness fact of ``pid`` once, zero-stop.

    ``history``: earlier HistorySamples of this pid (oldest first) for the major-fault and
    RSS-growth checks; a fresh sample is appended. Raises NoSuchProcess, ZombieProcess,
    KernelThread, AccessDenied (the target); system files that are missing give None.
    """
    status = procfs.check_target(pid, proc)
    stat = procfs.read_stat(pid, proc)
    status_text = procfs.read_text(pid, "status", proc)
    try:
        rollup: procfs.Rollup | None = procfs.read_smaps_rollup(pid, proc)
    except NoSuchProcess:
        procfs.check_target(pid, proc)  # really gone: raise; else a kernel < 4.14 without the file
        rollup = None
    limits = _read_proc(pid, "limits", proc)
    mounts = parse_hugetlbfs_mounts(procfs.read_system("mounts", proc) or "")
    maps_text = procfs.read_text(pid, "maps", proc)
    huge_paths = tuple(sorted({m.path for m in procfs.parse_maps(maps_text) if m.path and _is_hugetlb_path(m.path, mounts)}))
    meminfo = parse_meminfo(procfs.read_system("meminfo", proc) or "")
    thp_enabled = _read(f"{sys}/{THP_DIR}/enabled")
    thp_defrag = _read(f"{sys}/{THP_DIR}/defrag")
    thp_proc = _status_value(status_text, "THP_enabled")

    node_text = _read(f"{sys}/devices/system/node/online")
    try:
        nodes = tuple(sorted(parse_cpu_list(node_text))) if node_text is not None else None
    except ValueError:
        nodes = None
    numa_mappings: tuple[MappingNuma, ...] = ()
    if nodes is not None and len(nodes) > 1:
        try:
            numa_mappings = parse_numa_maps_per_mapping(procfs.read_text(pid, "numa_maps", proc))
        except NoSuchProcess:
            raise
        except SourceError:
            numa_mappings = ()

    def cpus(path: str) -> frozenset[int] | None:
        text = _read(f"{sys}/devices/system/cpu/{path}")
        try:
            return parse_cpu_list(text) if text is not None else None
        except ValueError:
            return None

    cmdline = procfs.read_system("cmdline", proc) or ""
    isolcpus = parse_cmdline_param(cmdline, "isolcpus")
    nohz = parse_cmdline_param(cmdline, "nohz_full")
    isolated = cpus("isolated")
    if isolated is None:
        isolated = cmdline_cpus(isolcpus)
    nohz_cpus = cpus("nohz_full")
    if nohz_cpus is None:
        nohz_cpus = cmdline_cpus(nohz)
    rt_runtime = procfs.read_system("sys/kernel/sched_rt_runtime_us", proc)
    threads, total = read_threads(pid, proc)
    samples = tuple(history) + (HistorySample(time.monotonic(), status.vm_rss_kb, stat.majflt),)
    if history and history[-1].t > samples[-1].t:  # the caller's clock is not monotonic(): keep theirs
        samples = tuple(history)
    return ReadinessFacts(
        pid=pid, comm=stat.comm, time=time.time(), age_s=_age_s(stat, proc),
        vm_rss_kb=status.vm_rss_kb, vm_lck_kb=status.vm_lck_kb, vm_swap_kb=status.vm_swap_kb,
        hugetlb_kb=_kb(_status_value(status_text, "HugetlbPages")),
        anon_huge_kb=rollup.anon_huge_kb if rollup is not None else None,
        memlock_limit=parse_limits_memlock(limits) if limits else None,
        hugetlbfs_mappings=huge_paths,
        thp_enabled=parse_bracketed(thp_enabled) if thp_enabled is not None else None,
        thp_defrag=parse_bracketed(thp_defrag) if thp_defrag is not None else None,
        thp_process=(thp_proc.strip() == "1") if thp_proc is not None else None,
        system_swap_kb=meminfo.get("SwapTotal"), system_hugepages=meminfo.get("HugePages_Total"),
        numa_nodes=nodes, numa_mappings=numa_mappings,
        majflt=stat.majflt, history=samples,
        online_cpus=cpus("online"), isolated_cpus=isolated, nohz_full_cpus=nohz_cpus,
        cmdline_isolcpus=isolcpus, cmdline_nohz_full=nohz,
        rt_runtime_us=int(rt_runtime) if rt_runtime and rt_runtime.strip().lstrip("-").isdigit() else None,
        threads=threads, threads_total=total,
    )
