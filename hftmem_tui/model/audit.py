"""The readiness audit: ReadinessFacts -> one Check per thing an HFT engineer verifies by hand.

Pure: no process, no /proc. Each check says pass / warn / fail (or unknown when the facts
cannot tell), the evidence it judged on (numbers, not adjectives), and what to do about it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collections.abc import Sequence
from dataclasses import dataclass

from hftmem_tui.model.trend import fit_leak

if TYPE_CHECKING:  # types only: model imports no source at run time
    from hftmem_tui.sources.readiness import HistorySample, ReadinessFacts, ThreadFacts

PASS, WARN, FAIL, UNKNOWN = "pass", "warn", "fail", "unknown"
STATUSES = (PASS, WARN, FAIL, UNKNOWN)
# Words, not colours alone: the table must read in a 16-colour or monochrome terminal.
LABELS = {PASS: "PASS", WARN: "WARN", FAIL: "FAIL", UNKNOWN: "UNKNOWN"}
SEVERITY = {PASS: 0, UNKNOWN: 1, WARN: 2, FAIL: 3}

# Check names, in the order shown (also the row keys of the audit table).
MEMORY_LOCKED = "memory locked"
THP = "transparent huge pages"
HUGE_PAGES = "explicit huge pages"
NUMA = "NUMA spread"
SWAP = "swap"
MAJOR_FAULTS = "major faults"
RSS_GROWTH = "RSS growth"
AFFINITY = "CPU affinity"
SCHEDULING = "scheduling policy"
CHECK_NAMES = (MEMORY_LOCKED, THP, HUGE_PAGES, NUMA, SWAP, MAJOR_FAULTS, RSS_GROWTH, AFFINITY, SCHEDULING)

RT_POLICIES = ("SCHED_FIFO", "SCHED_RR")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # PASS / WARN / FAIL / UNKNOWN
    evidence: str
    advice: str = ""

    @property
    def label(self) -> str:
        return LABELS[self.status]


@dataclass(frozen=True, slots=True)
class AuditConfig:
    warmup_s: float = 30.0  # faults and growth in the first seconds are the engine pre-allocating
    locked_share: float = 0.95  # VmLck / VmRSS at or above this: memory is locked
    busy_share: float = 0.05  # a thread with this share of the process's CPU time is "busy"
    big_mapping_kb: int = 1024  # NUMA: judge only mappings with at least this much resident
    min_fault_window_s: float = 1.0


def fmt_kb(kb: int | float) -> str:
    """512 kB, 10.5 MiB, 1.2 GiB: the unit a human reads at a glance."""
    if kb < 1024:
        return f"{kb:.0f} kB"
    if kb < 1024 * 1024:
        return f"{kb / 1024:.1f} MiB"
    return f"{kb / (1024 * 1024):.1f} GiB"


def fmt_cpus(cpus: frozenset[int] | set[int]) -> str:
    """{0,1,2,5} -> "0-2,5" (the cpulist syntax of taskset and /sys)."""
    out: list[str] = []
    run: list[int] = []
    for c in sorted(cpus):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [c]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out) or "none"


def worst(checks: Sequence[Check]) -> str:
    """The most severe status among ``checks`` (PASS for none)."""
    return max((c.status for c in checks), key=SEVERITY.__getitem__, default=PASS)


# --------------------------------------------------------------------------- checks


def check_memory_locked(f: ReadinessFacts, cfg: AuditConfig = AuditConfig()) -> Check:
    limit = f"; RLIMIT_MEMLOCK {_limit(f.memlock_limit)}" if f.memlock_limit else ""
    if f.vm_rss_kb <= 0:
        return Check(MEMORY_LOCKED, UNKNOWN, f"VmRSS 0 kB{limit}")
    share = f.vm_lck_kb / f.vm_rss_kb
    evidence = f"VmLck {fmt_kb(f.vm_lck_kb)} of VmRSS {fmt_kb(f.vm_rss_kb)} ({share:.0%}){limit}"
    advice = ("call mlockall(MCL_CURRENT | MCL_FUTURE) after pre-faulting pools and arenas "
              "(raise RLIMIT_MEMLOCK or grant CAP_IPC_LOCK)")
    if share >= cfg.locked_share:
        return Check(MEMORY_LOCKED, PASS, evidence + ": locked (mlockall)")
    if f.vm_lck_kb == 0:
        return Check(MEMORY_LOCKED, FAIL, evidence + ": nothing locked, reclaim can evict hot pages", advice)
    return Check(MEMORY_LOCKED, WARN, evidence + ": only part is locked (mlock of some regions)", advice)


def _limit(text: str) -> str:
    return text if not text.isdigit() else fmt_kb(int(text) / 1024)


def check_thp(f: ReadinessFacts, cfg: AuditConfig = AuditConfig()) -> Check:
    if f.thp_enabled is None:
        return Check(THP, UNKNOWN, "no /sys/kernel/mm/transparent_hugepage (THP not built in, or /sys not mounted)")
    used = f"AnonHugePages {fmt_kb(f.anon_huge_kb)} in use" if f.anon_huge_kb is not None else "AnonHugePages unknown"
    evidence = f"enabled [{f.thp_enabled}], defrag [{f.thp_defrag or '?'}]; {used}"
    if f.thp_process is False:
        evidence += "; disabled for this process (prctl)"
    problems = []
    if f.thp_defrag == "always":
        problems.append("defrag [always] makes a page fault wait for direct compaction")
    if f.thp_enabled == "always" and f.thp_process is not False:
        problems.append("enabled [always] lets khugepaged collapse the engine's pages behind its back")
    if problems:
        return Check(THP, WARN, evidence + ": " + "; ".join(problems),
                     "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled and .../defrag "
                     "(or never), and use explicit huge pages for the hot memory")
    return Check(THP, PASS, evidence)


def check_huge_pages(f: ReadinessFacts, cfg: AuditConfig = AuditConfig()) -> Check:
    system = f"; system reserves {f.system_hugepages} huge pages" if f.system_hugepages is not None else ""
    files = f" in {len(f.hugetlbfs_mappings)} hugetlbfs mapping(s)" if f.hugetlbfs_mappings else ""
    if (f.hugetlb_kb or 0) > 0 or f.hugetlbfs_mappings:
        size = fmt_kb(f.hugetlb_kb) if f.hugetlb_kb is not None else "?"
        return Check(HUGE_PAGES, PASS, f"HugetlbPages {size}{files}{system}")
    size = fmt_kb(f.hugetlb_kb) if f.hugetlb_kb is not None else "unknown"
    return Check(HUGE_PAGES, WARN,
                 f"HugetlbPages {size}, no hugetlbfs mapping{system}: pools and arenas sit on 4 KiB "
                 "pages (512x the TLB entries of 2 MiB pages)",
                 "reserve pages (vm.nr_hugepages) and back pools, arenas and rings with MAP_HUGETLB "
                 "or a hugetlbfs file")


def check_numa(f: ReadinessFacts, cfg: AuditConfig = AuditConfig()) -> Check:
    if f.numa_nodes is None:
        return Check(NUMA, UNKNOWN, "no /sys/devices/system/node/online (kernel without NUMA, or /sys not mounted)")
    if len(f.numa_nodes) <= 1:
        return Check(NUMA, PASS, f"single NUMA node ({', '.join(map(str, f.numa_nodes)) or '0'}): not applicable")
    big = [m for m in f.numa_mappings if m.kb >= cfg.big_mapping_kb]
    nodes = f"{len(f.numa_nodes)} nodes"
    if not big:
        return Check(NUMA, PASS, f"{nodes}; no mapping holds {fmt_kb(cfg.big_mapping_kb)} or more resident")
    spread = [m for m in big if sum(1 for _, kb in m.kb_per_node if kb) > 1]
    homes = {max(m.kb_per_node, key=lambda nk: nk[1])[0] for m in big}
    advice = ("start the engine under numactl --cpunodebind=N --membind=N (or mbind the pools) "
              "so threads and their memory share one node")
    if spread:
        worst_three = sorted(spread, key=lambda m: -m.kb)[:3]
        shown = "; ".join(f"{m.path or hex(m.start)} " + " / ".join(f"node{n} {fmt_kb(kb)}" for n, kb in m.kb_per_node if kb)
                          for m in worst_three)
        return Check(NUMA, WARN, f"{nodes}; {len(spread)} of {len(big)} big mappings span nodes: {shown}", advice)
    if len(homes) > 1:
        return Check(NUMA, WARN, f"{nodes}; big mappings live on nodes {fmt_cpus(frozenset(homes))}", advice)
    return Check(NUMA, PASS, f"{nodes}; all {len(big)} big mappings on node {homes.pop()}")


def check_swap(f: ReadinessFacts, cfg: AuditConfig = AuditConfig()) -> Check:
    system = (f"swap configured: {fmt_kb(f.system_swap_kb)}" if f.system_swap_kb
              else "no swap configured" if f.system_swap_kb == 0 else "system swap unknown")
    if f.vm_swap_kb > 0:
        return Check(SWAP, FAIL, f"VmSwap {fmt_kb(f.vm_swap_kb)} ({system}): touching it is a major fault",
                     "mlockall the engine, or swapoff on a trading box")
    locked = f.vm_rss_kb > 0 and f.vm_lck_kb / f.vm_rss_kb >= cfg.locked_share
    if f.system_swap_kb and not locked:
        return Check(SWAP, WARN, f"VmSwap 0 kB, but {system} and the memory is not locked",
                     "mlockall the engine, or swapoff on a trading box")
    return Check(SWAP, PASS, f"VmSwap 0 kB ({system})")


def _after_warmup(f: ReadinessFacts, cfg: AuditConfig) -> tuple[list[HistorySample], str]:
    """History samples taken after the process's warm-up, and why some were dropped."""
    samples = sorted(f.history, key=lambda s: s.t)
    if not samples or f.age_s is None:
        return samples, ""
    started = samples[-1].t - f.age_s  # process start on the history's clock
    kept = [s for s in samples if s.t >= started + cfg.warmup_s]
    note = f" after the {cfg.warmup_s:.0f} s warm-up" if len(kept) < len(samples) else ""
    return kept, note


def check_major_faults(f: ReadinessFacts, cfg: AuditConfig = AuditConfig()) -> Check:
    samples, note = _after_warmup(f, cfg)
    age = f"process up {f.age_s:.0f} s" if f.age_s is not None else "process age unknown"
    if len(samples) < 2 or samples[-1].t - samples[0].t < cfg.min_fault_window_s:
        return Check(MAJOR_FAULTS, UNKNOWN,
                     f"needs {cfg.min_fault_window_s:.0f} s of history after the {cfg.warmup_s:.0f} s warm-up "
                     f"({age}; {f.majflt} major faults since start)")
    span = samples[-1].t - samples[0].t
    delta = samples[-1].majflt - samples[0].majflt
    evidence = f"{delta} major faults in the last {span:.0f} s{note} ({f.majflt} since start)"
    if delta > 0:
        return Check(MAJOR_FAULTS, FAIL, evidence + f": {delta / span:.1f}/s, each one waits for the disk",
                     "pre-fault and mlockall at start-up; keep mapped files on tmpfs or fully read them first")
    return Check(MAJOR_FAULTS, PASS, evidence)


def check_rss_growth(f: ReadinessFacts, cfg: AuditConfig = AuditConfig()) -> Check:
    samples, note = _after_warmup(f, cfg)
    verdict = fit_leak([(s.t, s.vm_rss_kb * 1024) for s in samples], warmup_s=0.0)
    span = samples[-1].t - samples[0].t if samples else 0.0
    if verdict.verdict == "insufficient data":
        return Check(RSS_GROWTH, UNKNOWN,
                     f"needs 20 s of VmRSS history after the {cfg.warmup_s:.0f} s warm-up "
                     f"(have {span:.0f} s, {len(samples)} samples)")
    fit = (f"{verdict.slope_mib_per_min:+.2f} MiB/min over {span:.0f} s{note} (95% "
           f"{verdict.low_mib_per_min:+.2f}..{verdict.high_mib_per_min:+.2f}, confidence {verdict.confidence:.2f})")
    if verdict.verdict == "growing":
        return Check(RSS_GROWTH, FAIL, f"VmRSS growing {fit}",
                     "a steady-state engine should not grow: look at the Mappings and Allocators panels "
                     "for what grows")
    return Check(RSS_GROWTH, PASS, f"VmRSS {verdict.verdict} {fit}")


def busy_threads(f: ReadinessFacts, cfg: AuditConfig = AuditConfig()) -> list[ThreadFacts]:
    """Threads with at least ``busy_share`` of the process's CPU time (all, if none ran yet)."""
    total = sum(t.cpu_ticks for t in f.threads)
    if total <= 0:
        return list(f.threads)
    return [t for t in f.threads if t.cpu_ticks >= cfg.busy_share * total]


def _thread_label(t: ThreadFacts) -> str:
    return f"{t.comm}/{t.tid}"


def check_affinity(f: ReadinessFacts, cfg: AuditConfig = AuditConfig()) -> Check:
    busy = busy_threads(f, cfg)
    if not busy:
        return Check(AFFINITY, UNKNOWN, "no thread could be read")
    isolated = f.isolated_cpus or frozenset()
    iso = (f"isolated CPUs {fmt_cpus(isolated)}" if isolated
           else "no isolcpus" if f.isolated_cpus is not None else "isolation unknown")
    nohz = f.nohz_full_cpus or frozenset()
    iso += f", nohz_full {fmt_cpus(nohz)}" if nohz else ""
    shown = ", ".join(f"{_thread_label(t)} CPU {fmt_cpus(t.cpus)}" for t in busy[:4])
    more = f" (+{len(busy) - 4} more)" if len(busy) > 4 else ""
    evidence = f"{len(busy)} busy of {f.threads_total} threads: {shown}{more}; {iso}"
    advice = ("pin each hot thread to its own isolated core (pthread_setaffinity_np or taskset -cp CPU TID) "
              "and boot with isolcpus=/nohz_full= for those cores")
    pinned = [t for t in busy if len(t.cpus) == 1]
    if not pinned:
        return Check(AFFINITY, FAIL, evidence + ": none pinned, the scheduler migrates them", advice)
    if len(pinned) < len(busy):
        return Check(AFFINITY, WARN, evidence + f": {len(busy) - len(pinned)} busy thread(s) not pinned", advice)
    cpus = [next(iter(t.cpus)) for t in pinned]
    if len(set(cpus)) < len(cpus):
        return Check(AFFINITY, WARN, evidence + ": busy threads share a CPU", advice)
    if not set(cpus) <= isolated:
        return Check(AFFINITY, WARN, evidence + ": pinned, but on CPUs the scheduler still uses for other tasks",
                     advice)
    return Check(AFFINITY, PASS, evidence + ": each busy thread pinned to its own isolated CPU")


def check_scheduling(f: ReadinessFacts, cfg: AuditConfig = AuditConfig()) -> Check:
    busy = busy_threads(f, cfg)
    if not busy:
        return Check(SCHEDULING, UNKNOWN, "no thread could be read")
    shown = ", ".join(f"{_thread_label(t)} {t.policy}" + (f" prio {t.rt_priority}" if t.policy in RT_POLICIES
                                                           else f" nice {t.nice}") for t in busy[:4])
    more = f" (+{len(busy) - 4} more)" if len(busy) > 4 else ""
    evidence = f"{shown}{more}"
    rt = [t for t in busy if t.policy in RT_POLICIES]
    if len(rt) == len(busy):
        if f.rt_runtime_us is not None and f.rt_runtime_us >= 0:
            return Check(SCHEDULING, WARN,
                         f"{evidence}; RT throttling on (sched_rt_runtime_us={f.rt_runtime_us}): a spinning "
                         "FIFO thread is stopped for the rest of each second",
                         "echo -1 > /proc/sys/kernel/sched_rt_runtime_us on a box where spinning RT threads "
                         "have their own cores")
        return Check(SCHEDULING, PASS, f"{evidence}: real-time")
    quiet = (f.isolated_cpus or frozenset()) & (f.nohz_full_cpus or frozenset())
    others = [t for t in busy if t.policy not in RT_POLICIES]
    if all(len(t.cpus) == 1 and t.cpus <= quiet for t in others):
        return Check(SCHEDULING, PASS, f"{evidence}: SCHED_OTHER on isolated nohz_full CPUs (nothing to preempt them)")
    return Check(SCHEDULING, WARN,
                 f"{evidence}: {len(others)} busy thread(s) time-share with every other task on their CPUs",
                 "run hot threads SCHED_FIFO (chrt -f -p 80 TID) or pin them to isolated nohz_full cores")


CHECKS = (check_memory_locked, check_thp, check_huge_pages, check_numa, check_swap, check_major_faults,
          check_rss_growth, check_affinity, check_scheduling)


def evaluate(facts: ReadinessFacts, cfg: AuditConfig = AuditConfig()) -> tuple[Check, ...]:
    """Every readiness check of ``facts``, in CHECK_NAMES order. Never raises."""
    return tuple(check(facts, cfg) for check in CHECKS)
