"""Readiness facts of the real demo engine, read from the real /proc and /sys, and `hftmem audit`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hftmem_tui.model import audit
from hftmem_tui.model.audit import FAIL, PASS, UNKNOWN, evaluate
from hftmem_tui.sources.readiness import read_facts, sample_history
from tests.conftest import proc_status, run_cli
from tests.helpers import wait_for


def test_facts_of_the_real_engine(engine):
    pid = engine()
    f = read_facts(pid, sample_history(pid, 0.5, 0.1))
    st = proc_status(pid)
    assert f.pid == pid and f.comm == "hftmem-engine"
    assert abs(f.vm_rss_kb - int(st["VmRSS"].split()[0])) < 4096
    assert f.vm_lck_kb == int(st["VmLck"].split()[0]) and f.vm_swap_kb == int(st["VmSwap"].split()[0])
    assert f.threads_total == int(st["Threads"]) == len(f.threads)
    assert {t.comm for t in f.threads} >= {"hftmem-strat", "hftmem-md"}
    assert all(t.cpus == frozenset(os.sched_getaffinity(t.tid)) for t in f.threads)
    assert all(t.policy == "SCHED_OTHER" for t in f.threads)
    assert f.age_s is not None and 0 <= f.age_s < 60
    assert len(f.history) >= 5 and f.history[-1].t >= f.history[0].t + 0.4
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if thp.exists():
        assert f"[{f.thp_enabled}]" in thp.read_text()
    nodes = Path("/sys/devices/system/node/online")
    if nodes.exists() and nodes.read_text().strip() == "0":
        assert f.numa_nodes == (0,) and f.numa_mappings == ()
    # The engine is neither locked nor pinned: the audit must say so, with the numbers.
    checks = {c.name: c for c in evaluate(f)}
    assert checks[audit.MEMORY_LOCKED].status == FAIL and "VmLck 0 kB" in checks[audit.MEMORY_LOCKED].evidence
    assert checks[audit.AFFINITY].status == FAIL and "hftmem-strat/" in checks[audit.AFFINITY].evidence


def test_pinning_a_thread_is_seen(engine):
    pid = engine()
    # The engine names its threads just after it starts: wait for the name, not for a time.
    def named():
        facts = read_facts(pid)
        return facts if any(t.comm == "hftmem-strat" for t in facts.threads) else None

    f = wait_for(named, what="the strategy thread's name")
    strat = next(t for t in f.threads if t.comm == "hftmem-strat")
    cpu = min(strat.cpus)
    os.sched_setaffinity(strat.tid, {cpu})  # our own test engine: pin its hot thread, as an operator would
    f = read_facts(pid)
    assert next(t for t in f.threads if t.tid == strat.tid).cpus == {cpu}
    c = {c.name: c for c in evaluate(f)}[audit.AFFINITY]
    assert c.status != FAIL and f"hftmem-strat/{strat.tid} CPU {cpu}" in c.evidence


def test_missing_system_files_are_unknown_not_a_crash(engine, tmp_path):
    pid = engine()
    f = read_facts(pid, sys=str(tmp_path))  # an empty /sys, as in a stripped container
    assert f.thp_enabled is None and f.numa_nodes is None and f.online_cpus is None
    checks = {c.name: c for c in evaluate(f)}
    assert checks[audit.THP].status == UNKNOWN and checks[audit.NUMA].status == UNKNOWN
    assert checks[audit.SWAP].status == PASS  # /proc still answers


def test_audit_command(engine):
    pid = engine()
    r = run_cli("audit", str(pid), "--window", "0.5")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    for name in audit.CHECK_NAMES:
        assert any(name in line for line in lines), name
    assert any(line.startswith("FAIL") and "memory locked" in line for line in lines)
    r = run_cli("audit", str(pid), "--json", "--window", "0")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [c["name"] for c in doc["checks"]] == list(audit.CHECK_NAMES)
    assert doc["worst"] == FAIL and all(c["status"] in audit.STATUSES for c in doc["checks"])
    assert proc_status(pid)["TracerPid"] == "0" and proc_status(pid)["State"][0] in "RS"


def test_audit_command_errors():
    r = run_cli("audit", "999999999")
    assert r.returncode == 1 and r.stderr.startswith("hftmem: no process") and "Traceback" not in r.stderr
    r = run_cli("audit", "1", "--window", "-3")
    assert r.returncode == 2 and "window" in r.stderr and r.stderr.count("\n") == 1


def test_default_window_says_exactly_which_window_gives_rss_growth_a_verdict(engine):
    """The quick default (2 s) cannot judge RSS growth: the advice names the --window that can."""
    import dataclasses
    import re

    from hftmem_tui.commands.audit import window_needed
    from hftmem_tui.sources.readiness import HistorySample

    pid = engine()
    r = run_cli("audit", str(pid), "--json")
    assert r.returncode == 0, r.stderr
    growth = next(c for c in json.loads(r.stdout)["checks"] if c["name"] == audit.RSS_GROWTH)
    assert growth["status"] == UNKNOWN
    m = re.search(rf"the process is (\d+) s old; run `hftmem audit {pid} --window (\d+)`", growth["advice"])
    assert m, growth
    age, window = int(m.group(1)), int(m.group(2))
    assert abs(window - window_needed(age)) <= 1 and 40 <= window <= 51  # 20 s after the rest of the warm-up, +1
    # The window it advises, sampled on a process of that age, is enough; two seconds less is not.
    facts, age = read_facts(pid), 10.0
    window = int(window_needed(age))
    for w, enough in ((window, True), (window - 2, False)):
        history = tuple(HistorySample(t=i * 0.25, vm_rss_kb=facts.vm_rss_kb, majflt=0) for i in range(int(w * 4) + 1))
        f = dataclasses.replace(facts, history=history, age_s=age + w)
        status = next(c.status for c in evaluate(f) if c.name == audit.RSS_GROWTH)
        assert (status != UNKNOWN) == enough, (w, status)
