"""Readiness audit on hand-built facts: every check's pass, warn and fail (no process at all)."""

from __future__ import annotations

import dataclasses

import pytest

from hftmem_tui.model import audit
from hftmem_tui.model.audit import FAIL, PASS, UNKNOWN, WARN, evaluate, fmt_cpus, worst
from hftmem_tui.sources.readiness import (
    HistorySample,
    MappingNuma,
    ReadinessFacts,
    ThreadFacts,
    cmdline_cpus,
    parse_bracketed,
    parse_cmdline_param,
    parse_cpu_list,
    parse_hugetlbfs_mounts,
    parse_limits_memlock,
    parse_meminfo,
    parse_numa_maps_per_mapping,
)

MIB = 1024


def thread(tid: int, comm: str, ticks: int, cpus=(0, 1, 2, 3), policy="SCHED_OTHER", prio=0) -> ThreadFacts:
    return ThreadFacts(tid, comm, policy, prio, 0, frozenset(cpus), ticks)


def flat_history(seconds: int = 60, rss_kb: int = 100 * MIB, majflt: int = 3, slope_kb_per_s: float = 0.0):
    return tuple(HistorySample(1000.0 + t, int(rss_kb + slope_kb_per_s * t), majflt) for t in range(seconds + 1))


def facts(**over) -> ReadinessFacts:
    """A production-ready engine: locked, hugetlbfs, pinned FIFO threads on isolated cores."""
    base = dict(
        pid=42, comm="engine", time=0.0, age_s=3600.0,
        vm_rss_kb=100 * MIB, vm_lck_kb=101 * MIB, vm_swap_kb=0, hugetlb_kb=64 * MIB, anon_huge_kb=0,
        memlock_limit="unlimited", hugetlbfs_mappings=("/dev/hugepages/pool",), thp_enabled="madvise",
        thp_defrag="defer", thp_process=True, system_swap_kb=0, system_hugepages=64,
        numa_nodes=(0,), numa_mappings=(), majflt=3, history=flat_history(),
        online_cpus=frozenset(range(4)), isolated_cpus=frozenset({2, 3}), nohz_full_cpus=frozenset({2, 3}),
        cmdline_isolcpus="2-3", cmdline_nohz_full="2-3", rt_runtime_us=-1,
        threads=(thread(42, "engine", 10), thread(43, "md", 5000, (2,), "SCHED_FIFO", 80),
                 thread(44, "strat", 6000, (3,), "SCHED_FIFO", 80)),
        threads_total=3,
    )
    base.update(over)
    return ReadinessFacts(**base)


def by_name(f: ReadinessFacts) -> dict[str, audit.Check]:
    return {c.name: c for c in evaluate(f)}


def test_ready_engine_passes_every_check():
    checks = evaluate(facts())
    assert [c.name for c in checks] == list(audit.CHECK_NAMES)
    assert {c.name: c.status for c in checks} == {name: PASS for name in audit.CHECK_NAMES}
    assert worst(checks) == PASS and all(c.evidence for c in checks)


@pytest.mark.parametrize("lck, status", [(101 * MIB, PASS), (10 * MIB, WARN), (0, FAIL)])
def test_memory_locked(lck, status):
    c = by_name(facts(vm_lck_kb=lck))[audit.MEMORY_LOCKED]
    assert c.status == status
    assert "VmRSS 100.0 MiB" in c.evidence and "RLIMIT_MEMLOCK unlimited" in c.evidence
    assert (c.advice != "") == (status != PASS)


@pytest.mark.parametrize("enabled, defrag, status", [
    ("madvise", "madvise", PASS), ("never", "never", PASS), ("always", "madvise", WARN),
    ("madvise", "always", WARN), (None, None, UNKNOWN)])
def test_thp(enabled, defrag, status):
    c = by_name(facts(thp_enabled=enabled, thp_defrag=defrag, anon_huge_kb=4096))[audit.THP]
    assert c.status == status
    if enabled:
        assert f"enabled [{enabled}]" in c.evidence and "AnonHugePages 4.0 MiB" in c.evidence


def test_thp_always_is_fine_when_the_process_opted_out():
    assert by_name(facts(thp_enabled="always", thp_process=False))[audit.THP].status == PASS


def test_explicit_huge_pages():
    assert by_name(facts())[audit.HUGE_PAGES].status == PASS
    c = by_name(facts(hugetlb_kb=0, hugetlbfs_mappings=(), system_hugepages=0))[audit.HUGE_PAGES]
    assert c.status == WARN and "HugetlbPages 0 kB" in c.evidence and "reserves 0 huge pages" in c.evidence
    # An old kernel without HugetlbPages in status still sees the hugetlbfs mapping in maps.
    assert by_name(facts(hugetlb_kb=None))[audit.HUGE_PAGES].status == PASS


def test_numa():
    one = by_name(facts(numa_nodes=(0,)))[audit.NUMA]
    assert one.status == PASS and "not applicable" in one.evidence
    assert by_name(facts(numa_nodes=None))[audit.NUMA].status == UNKNOWN
    local = (MappingNuma(0x1000, "[heap]", ((0, 50 * MIB),)), MappingNuma(0x9000, "/dev/hugepages/pool", ((0, 64 * MIB),)),
             MappingNuma(0xA000, "libc.so", ((0, 100), (1, 100))))  # small: not judged
    assert by_name(facts(numa_nodes=(0, 1), numa_mappings=local))[audit.NUMA].status == PASS
    spread = local + (MappingNuma(0xB000, "", ((0, 8 * MIB), (1, 24 * MIB))),)
    c = by_name(facts(numa_nodes=(0, 1), numa_mappings=spread))[audit.NUMA]
    assert c.status == WARN and "1 of 3 big mappings span nodes" in c.evidence and "node1 24.0 MiB" in c.evidence
    split = (MappingNuma(0x1000, "[heap]", ((0, 50 * MIB),)), MappingNuma(0x9000, "pool", ((1, 64 * MIB),)))
    c = by_name(facts(numa_nodes=(0, 1), numa_mappings=split))[audit.NUMA]
    assert c.status == WARN and "nodes 0-1" in c.evidence


def test_swap():
    assert by_name(facts(vm_swap_kb=2048))[audit.SWAP].status == FAIL
    assert by_name(facts(system_swap_kb=4 * MIB * MIB, vm_lck_kb=0))[audit.SWAP].status == WARN
    assert by_name(facts(system_swap_kb=4 * MIB * MIB))[audit.SWAP].status == PASS  # locked: cannot swap
    assert "no swap configured" in by_name(facts())[audit.SWAP].evidence


def test_major_faults_after_warmup():
    rising = tuple(HistorySample(1000.0 + t, 100 * MIB, 3 + 2 * t) for t in range(11))
    c = by_name(facts(history=rising, majflt=23))[audit.MAJOR_FAULTS]
    assert c.status == FAIL and c.evidence.startswith("20 major faults in the last 10 s")
    assert by_name(facts())[audit.MAJOR_FAULTS].status == PASS
    # Faults while the engine warms up (first 30 s of its life) do not count.
    young = tuple(HistorySample(1000.0 + t, 100 * MIB, t) for t in range(40))
    c = by_name(facts(history=young, age_s=40.0, majflt=39))[audit.MAJOR_FAULTS]
    assert c.status == FAIL
    assert c.evidence.startswith("10 major faults in the last 10 s after the 30 s warm-up (39 since start)")
    c = by_name(facts(history=young[:5], age_s=5.0))[audit.MAJOR_FAULTS]
    assert c.status == UNKNOWN and "warm-up" in c.evidence
    assert by_name(facts(history=()))[audit.MAJOR_FAULTS].status == UNKNOWN


def test_rss_growth():
    c = by_name(facts(history=flat_history(120, slope_kb_per_s=2 * MIB / 60)))[audit.RSS_GROWTH]
    assert c.status == FAIL and "growing +2.00 MiB/min" in c.evidence
    c = by_name(facts())[audit.RSS_GROWTH]
    assert c.status == PASS and "flat" in c.evidence
    c = by_name(facts(history=flat_history(5)))[audit.RSS_GROWTH]
    assert c.status == UNKNOWN and "have 5 s" in c.evidence
    # Growth that happened only during warm-up is not a leak.
    warm = tuple(HistorySample(1000.0 + t, (50 + min(t, 25)) * MIB, 0) for t in range(90))
    assert by_name(facts(history=warm, age_s=90.0))[audit.RSS_GROWTH].status == PASS


def test_cpu_affinity():
    assert by_name(facts())[audit.AFFINITY].status == PASS
    floating = (thread(42, "engine", 10), thread(43, "md", 5000), thread(44, "strat", 6000))
    c = by_name(facts(threads=floating))[audit.AFFINITY]
    assert c.status == FAIL and "2 busy of 3 threads" in c.evidence and "md/43 CPU 0-3" in c.evidence
    half = (thread(43, "md", 5000, (2,)), thread(44, "strat", 6000))
    assert by_name(facts(threads=half))[audit.AFFINITY].status == WARN
    shared = (thread(43, "md", 5000, (2,)), thread(44, "strat", 6000, (2,)))
    assert "share a CPU" in by_name(facts(threads=shared))[audit.AFFINITY].evidence
    c = by_name(facts(isolated_cpus=frozenset(), nohz_full_cpus=None))[audit.AFFINITY]
    assert c.status == WARN and "no isolcpus" in c.evidence
    assert by_name(facts(threads=()))[audit.AFFINITY].status == UNKNOWN


def test_scheduling_policy():
    assert by_name(facts())[audit.SCHEDULING].status == PASS
    c = by_name(facts(rt_runtime_us=950000))[audit.SCHEDULING]
    assert c.status == WARN and "sched_rt_runtime_us=950000" in c.evidence
    other = (thread(43, "md", 5000, (2,)), thread(44, "strat", 6000, (3,)))
    c = by_name(facts(threads=other))[audit.SCHEDULING]
    assert c.status == PASS and "nohz_full" in c.evidence  # busy-spin on quiet isolated cores is fine
    c = by_name(facts(threads=other, nohz_full_cpus=None))[audit.SCHEDULING]
    assert c.status == WARN and "strat/44 SCHED_OTHER nice 0" in c.evidence


def test_worst_and_labels():
    checks = evaluate(facts(vm_swap_kb=1, thp_enabled="always"))
    assert worst(checks) == FAIL
    assert {c.label for c in checks} <= {"PASS", "WARN", "FAIL", "UNKNOWN"}
    assert worst([]) == PASS
    assert dataclasses.asdict(checks[0])["status"] == checks[0].status


# --------------------------------------------------------------------------- fact parsers


def test_cpu_lists():
    assert parse_cpu_list("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    assert parse_cpu_list("") == frozenset() and parse_cpu_list("0-6:3") == {0, 3, 6}
    assert fmt_cpus(parse_cpu_list("0-3,8,10-11")) == "0-3,8,10-11"
    with pytest.raises(ValueError):
        parse_cpu_list("x")


def test_kernel_cmdline_and_sysfs_choices():
    cmd = "BOOT_IMAGE=/vmlinuz isolcpus=domain,managed_irq,2-5 nohz_full=2-5 quiet -- isolcpus=9"
    assert parse_cmdline_param(cmd, "isolcpus") == "domain,managed_irq,2-5"  # after "--" is init's
    assert cmdline_cpus(parse_cmdline_param(cmd, "isolcpus")) == {2, 3, 4, 5}
    assert parse_cmdline_param(cmd, "rcu_nocbs") is None and cmdline_cpus(None) is None
    assert parse_bracketed("always [madvise] never\n") == "madvise"
    assert parse_bracketed("always defer defer+madvise [madvise] never") == "madvise"


def test_meminfo_limits_mounts_numa():
    assert parse_meminfo("SwapTotal:       1024 kB\nHugePages_Total:      8\n") == {"SwapTotal": 1024, "HugePages_Total": 8}
    limits = ("Limit                     Soft Limit           Hard Limit           Units     \n"
              "Max locked memory         8388608              8388608              bytes     \n")
    assert parse_limits_memlock(limits) == "8388608"
    assert parse_hugetlbfs_mounts("hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n"
                                  "proc /proc proc rw 0 0\n") == ("/dev/hugepages",)
    numa = ("55d0 default file=/usr/bin/x mapped=3 N0=3 kernelpagesize_kB=4\n"
            "7f00 bind:0-1 anon=600 dirty=600 N0=100 N1=500 kernelpagesize_kB=4\n"
            "7f10 default heap anon=1 dirty=1 N1=1 kernelpagesize_kB=2048\n"
            "7f20 default\n")
    x, anon, heap = parse_numa_maps_per_mapping(numa)
    assert (x.path, x.kb) == ("/usr/bin/x", 12)
    assert anon.kb_per_node == ((0, 400), (1, 2000)) and anon.path == ""
    assert (heap.path, heap.kb) == ("[heap]", 2048)
