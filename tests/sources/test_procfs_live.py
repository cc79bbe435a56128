"""procfs / process / perf sources against real processes on this machine (no mocks)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from hftmem_tui.errors import KernelThread, NoSuchProcess, ZombieProcess
from hftmem_tui.sources import procfs
from hftmem_tui.sources.perf.stat import HARDWARE_EVENTS, PerfStream, probe_events
from hftmem_tui.sources.process import ProcessProbe
from tests.conftest import ROOT

MANY = ROOT / "tests" / "fixtures" / "many_mappings.py"
TEST_USER = "hftmem-test"
SYSTEM_PYTHON = "/usr/bin/python3"  # readable by an unprivileged user (pyenv under /root is not)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=5)


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    _stop(proc)


@pytest.fixture(scope="module")
def many_mappings():
    """A helper process holding 5,000 separate mappings (alternating protections)."""
    proc = subprocess.Popen([sys.executable, str(MANY), "5000"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # the helper prints "ready PID" once all mappings exist
    assert line.startswith("ready"), line
    yield proc
    proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        _stop(proc)


def pmap_x(pid: int) -> tuple[int, tuple[int, int, int]]:
    out = subprocess.run(["pmap", "-x", str(pid)], capture_output=True, text=True, timeout=30,
                         check=True).stdout.splitlines()
    total = next(ln for ln in out if ln.startswith("total kB")).split()[2:5]
    rows = [ln for ln in out[2:] if ln and not ln.startswith(("-", "total"))]
    return len(rows), tuple(map(int, total))


@pytest.mark.skipif(shutil.which("pmap") is None, reason="pmap (procps) not installed")
def test_smaps_agrees_with_pmap_x_on_5000_mappings(many_mappings):
    pid = many_mappings.pid
    maps = procfs.read_smaps(pid)
    count, (kbytes, rss, dirty) = pmap_x(pid)
    assert len(maps) >= 5000 and len(maps) == count
    assert sum(m.size_kb for m in maps) == kbytes
    # The helper is idle; allow a few pages of drift for the interpreter itself.
    assert abs(sum(m.rss_kb for m in maps) - rss) <= 64
    assert abs(sum(m.dirty_kb for m in maps) - dirty) <= 64


def test_smaps_rollup_status_and_psutil_agree(many_mappings):
    pid = many_mappings.pid
    maps = procfs.read_smaps(pid)
    rollup = procfs.read_smaps_rollup(pid)
    status = procfs.read_status(pid)
    mem = psutil.Process(pid).memory_full_info()
    rss_kb = sum(m.rss_kb for m in maps)
    assert abs(rollup.rss_kb - rss_kb) <= 64
    assert abs(status.vm_rss_kb - rss_kb) <= 256  # status counters are per-cpu batched
    assert abs(mem.rss // 1024 - status.vm_rss_kb) <= 256
    assert abs(mem.pss // 1024 - sum(m.pss_kb for m in maps)) <= 64
    maps_only = procfs.read_maps(pid)
    assert [(m.start, m.end) for m in maps_only] == [(m.start, m.end) for m in maps]


def test_status_and_stat_of_self():
    st = procfs.read_status(os.getpid())
    stat = procfs.read_stat(os.getpid())
    assert st.tgid == os.getpid() and st.ppid == os.getppid() and st.uid == os.getuid()
    assert stat.ppid == os.getppid() and stat.state == "R" and not stat.is_kernel_thread
    assert st.threads == stat.num_threads == psutil.Process().num_threads()


def test_sched_of_self():
    s = procfs.read_sched(os.getpid())
    assert s.policy == "SCHED_OTHER" and s.rt_priority == 0
    assert s.affinity == frozenset(os.sched_getaffinity(0)) and s.nice == os.getpriority(os.PRIO_PROCESS, 0)


def test_numa_maps_of_self_or_none():
    nodes = procfs.read_numa_maps(os.getpid())
    if nodes is None:
        assert not Path(f"/proc/{os.getpid()}/numa_maps").exists()
    else:
        assert sum(n.kb for n in nodes) > 0


def test_check_target_live(sleeper):
    st = procfs.check_target(sleeper.pid)
    assert st.name == "sleep" and st.vm_rss_kb > 0


def test_zombie():
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 5
        while procfs.read_stat(child.pid).state != "Z":  # exited but not reaped by us yet
            assert time.monotonic() < deadline, "child never became a zombie"
            time.sleep(0.01)
        with pytest.raises(ZombieProcess):
            procfs.check_target(child.pid)
        with pytest.raises(ZombieProcess):
            procfs.read_smaps(child.pid)
        with pytest.raises(ZombieProcess):
            ProcessProbe(child.pid).sample()
    finally:
        child.wait(timeout=5)


def test_kernel_thread_pid_2():
    assert procfs.read_stat(2).comm == "kthreadd"
    with pytest.raises(KernelThread):
        procfs.check_target(2)
    with pytest.raises(KernelThread):
        procfs.read_smaps(2)
    assert procfs.read_status(2).is_kernel_thread


def _free_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait(timeout=5)
    return child.pid  # reaped: free until the kernel wraps around pid_max


def test_unknown_pid():
    pid = _free_pid()
    for call in (procfs.check_target, procfs.read_smaps, procfs.read_status, procfs.read_sched,
                 procfs.read_numa_maps, ProcessProbe):
        with pytest.raises(NoSuchProcess):
            call(pid)
    with pytest.raises(NoSuchProcess):
        procfs.check_target(-1)
    assert "no process with pid" in str(NoSuchProcess(pid))


def test_process_probe_matches_psutil(many_mappings):
    probe = ProcessProbe(many_mappings.pid)
    info = probe.sample()
    assert info.pid == many_mappings.pid and info.cmdline[-1] == "5000"
    assert info.uss is None and info.rss > 0 and info.num_threads == len(info.threads) == 1
    assert info.num_fds >= 3 and info.username == "root"
    full = probe.sample(full=True)
    assert full.uss and full.pss and full.uss <= full.pss <= full.rss + 65536


def test_thread_times_are_psutils_from_the_one_task_stat_reader():
    import threading

    from hftmem_tui.sources.process import thread_times

    done = threading.Event()
    started = threading.Event()
    tid = []

    def spin() -> None:
        tid.append(threading.get_native_id())
        started.set()
        while not done.is_set():
            pass

    t = threading.Thread(target=spin)
    t.start()
    try:
        assert started.wait(10)
        ours = {th.id: th for th in thread_times(os.getpid())}
        theirs = {th.id: th for th in psutil.Process().threads()}
    finally:
        done.set()
        t.join()
    assert os.getpid() in ours and tid[0] in ours and {os.getpid(), tid[0]} <= set(theirs)
    for i in set(ours) & set(theirs):  # read a moment apart: the spinner may gain a tick or two
        assert abs(ours[i].user_time - theirs[i].user_time) <= 0.1
        assert abs(ours[i].system_time - theirs[i].system_time) <= 0.1
    with pytest.raises(NoSuchProcess):
        thread_times(2**22 + 12345)


@pytest.fixture(scope="module")
def unprivileged_user():
    """A real unprivileged user (created if missing, removed afterwards if we created it)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a user and switch to it")
    if not (shutil.which("setpriv") and shutil.which("useradd") and os.access(SYSTEM_PYTHON, os.X_OK)):
        pytest.skip("setpriv/useradd/system python3 not available")
    created = False
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        TEST_USER], check=True, timeout=30)
        created = True
    pw = pwd.getpwnam(TEST_USER)
    yield pw
    if created:
        subprocess.run(["userdel", TEST_USER], timeout=30, check=False)


def run_as(pw, code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
         SYSTEM_PYTHON, "-c", code],
        capture_output=True, text=True, timeout=30, cwd="/",
        env={"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin")})


def test_other_users_process_is_access_denied(unprivileged_user, sleeper):
    code = ("from hftmem_tui.sources import procfs\n"
            "from hftmem_tui.errors import AccessDenied\n"
            f"st = procfs.read_status({sleeper.pid})\n"  # status is world-readable
            "try:\n"
            f"    procfs.check_target({sleeper.pid})\n"
            "except AccessDenied as e:\n"
            "    print('DENIED', e)\n"
            "try:\n"
            f"    procfs.read_smaps({sleeper.pid})\n"
            "except AccessDenied as e:\n"
            "    print('DENIED', e)\n")
    r = run_as(unprivileged_user, code)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and all(ln.startswith("DENIED permission denied") for ln in lines), r.stdout
    assert "run as the same user as the target or as root" in lines[0]


def test_same_user_process_is_allowed(unprivileged_user):
    target = subprocess.Popen(["setpriv", f"--reuid={unprivileged_user.pw_uid}",
                               f"--regid={unprivileged_user.pw_gid}", "--clear-groups", "sleep", "30"])
    try:
        time.sleep(0.2)
        code = ("from hftmem_tui.sources import procfs\n"
                f"print(len(procfs.read_smaps({target.pid})), procfs.check_target({target.pid}).uid)")
        r = run_as(unprivileged_user, code)
        assert r.returncode == 0, r.stderr
        count, uid = map(int, r.stdout.split())
        assert count > 5 and uid == unprivileged_user.pw_uid
    finally:
        _stop(target)


# ----------------------------------------------------------------------------- perf

needs_perf = pytest.mark.skipif(shutil.which("perf") is None, reason="perf not installed (apt-get install linux-perf)")

BUSY = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass\n"


@needs_perf
@pytest.mark.timeout(30)
def test_perf_stream_on_busy_process():
    busy = subprocess.Popen([sys.executable, "-c", BUSY.format(s=10)])
    try:
        with PerfStream(busy.pid, interval_ms=200) as stream:
            samples = []
            for s in stream.samples():
                samples.append(s)
                if len(samples) == 3:
                    break
        assert len(samples) == 3
        assert samples[0].timestamp_s < samples[1].timestamp_s < samples[2].timestamp_s
        for s in samples:
            assert s.values["task-clock"] > 0
            for ev in HARDWARE_EVENTS:
                assert ev in s.unsupported or isinstance(s.values[ev], float)
        stream.close()  # idempotent
    finally:
        _stop(busy)


@needs_perf
@pytest.mark.timeout(30)
def test_perf_stream_ends_when_target_exits():
    target = subprocess.Popen([sys.executable, "-c", BUSY.format(s=0.7)])
    t0 = time.monotonic()
    with PerfStream(target.pid, interval_ms=200, events=("task-clock", "page-faults")) as stream:
        samples = list(stream.samples())
    target.wait(timeout=5)
    assert time.monotonic() - t0 < 5
    assert 1 <= len(samples) <= 6
    assert any((s.values["task-clock"] or 0) > 0 for s in samples)


@needs_perf
@pytest.mark.timeout(30)
def test_perf_unknown_pid_and_probe():
    with pytest.raises(NoSuchProcess):
        with PerfStream(_free_pid(), interval_ms=100) as stream:
            list(stream.samples())
    supported = probe_events(os.getpid())
    assert {"task-clock", "page-faults", "context-switches"} <= supported


@needs_perf
@pytest.mark.timeout(30)
def test_perf_refused_for_unprivileged_user(unprivileged_user, sleeper):
    code = ("from hftmem_tui.sources.perf.stat import PerfStream\n"
            "from hftmem_tui.errors import AccessDenied\n"
            "try:\n"
            f"    with PerfStream({sleeper.pid}, interval_ms=100) as s:\n"
            "        list(s.samples())\n"
            "except AccessDenied as e:\n"
            "    print('DENIED', e)\n")
    r = run_as(unprivileged_user, code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("DENIED permission denied reading perf counters"), r.stdout
    assert r.stdout.count("\n") == 1
