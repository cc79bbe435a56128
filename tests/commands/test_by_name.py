"""A process named instead of numbered (as pgrep matches names), on real processes: one match is
used, several are refused with the candidates listed, hftmem and its shell are never candidates.
And a refusal by the kernel says what is really missing (uid, CAP_SYS_PTRACE, Yama, namespace)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from hftmem_tui.sources.procfs import read_stat
from hftmem_tui.sources.procfs.access import denial_reasons, explain_denial
from hftmem_tui.sources.procfs.lookup import (
    AmbiguousName,
    NoMatch,
    find_processes,
    resolve,
    visible,
)
from tests.conftest import run_cli, stop_process


@pytest.fixture
def named(tmp_path):
    """Factory: start `sleep` under a chosen file name (its comm); all stopped at teardown."""
    started: list[subprocess.Popen] = []

    def start(name: str) -> int:
        exe = tmp_path / name
        if not exe.exists():
            shutil.copy(shutil.which("sleep"), exe)
        proc = subprocess.Popen([str(exe), "300"])
        started.append(proc)
        # The comm is set by exec: wait until /proc shows the new name, not a fixed time.
        deadline = time.monotonic() + 10
        while read_stat(proc.pid).comm != name[:15]:
            assert time.monotonic() < deadline, "exec did not happen"
            time.sleep(0.005)
        return proc.pid

    yield start
    for p in started:
        stop_process(p.pid)


def _name() -> str:
    return "hfz" + uuid.uuid4().hex[:8]


def test_one_match_is_that_process_with_its_start_time(named):
    name = _name()
    pid = named(name)
    ident = resolve(name)
    assert ident.pid == pid and ident.start_ticks == read_stat(pid).starttime_ticks
    assert resolve(pid) == ident
    r = run_cli("snapshot", name, "--no-perf", "--json")
    assert r.returncode == 0, r.stderr
    assert f'"pid":{pid}' in r.stdout


def test_a_pattern_matches_the_name_as_pgrep_does(named):
    name = _name()
    pid = named(name)
    assert resolve(name[:5] + ".*" + name[-2:]).pid == pid  # a regex searched in the name
    pgrep = subprocess.run(["pgrep", name[:5] + ".*" + name[-2:]], capture_output=True, text=True)
    assert pgrep.stdout.split() == [str(pid)]


def test_an_exact_name_wins_over_a_pattern(named):
    name = _name()
    exact = named(name)
    named(name + "x")  # also matches `name` as a pattern
    assert resolve(name).pid == exact


def test_two_matches_are_refused_with_the_candidates(named):
    name = _name()
    pids = sorted([named(name), named(name)])
    with pytest.raises(AmbiguousName) as e:
        resolve(name)
    assert all(str(p) in str(e.value) for p in pids)
    r = run_cli("audit", name, "--window", "0")
    assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == f"hftmem: 2 processes match '{name}': give one pid"
    assert lines[1].split() == ["PID", "USER", "STARTED", "COMMAND"]
    rows = [ln.split() for ln in lines[2:]]
    assert [int(r[0]) for r in rows] == pids  # oldest first, one per line
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    assert all(r[1] == user and r[-1] == "300" and r[-2].endswith("/" + name) for r in rows)


def test_no_match_is_one_line_exit_1():
    r = run_cli("snapshot", _name())
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1
    assert "no process named" in r.stderr and "as pgrep does" in r.stderr


def test_hftmem_and_its_shell_are_never_candidates():
    own = read_stat(os.getpid()).comm
    assert os.getpid() not in {c.pid for c in find_processes(own)}
    assert os.getppid() not in {c.pid for c in find_processes(read_stat(os.getppid()).comm)}
    with pytest.raises(NoMatch):
        resolve(_name())


def test_candidate_text_is_escaped():
    assert visible("a\x1b]0;x\x07b\u202e") == "a\\x1b]0;x\\x07b\\u202e"


def _as_nobody(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                           sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop to another uid")
def test_refusal_names_the_uid_and_the_missing_capability(named):
    pid = named(_name())  # ours: uid 0
    r = _as_nobody(f"from hftmem_tui.cli import main; import sys; sys.exit(main(['dump', '{pid}', '0x1000']))")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1
    assert "it runs as uid 0 and hftmem as uid 65534 without CAP_SYS_PTRACE" in r.stderr
    assert "run as the same user as the target or as root" not in r.stderr


def test_no_uid_reason_for_our_own_child(named):
    """Our own child has our uid and our capabilities: a refusal of it is never blamed on those."""
    pid = named(_name())
    assert not [r for r in denial_reasons(pid) if r.startswith("it runs as uid") or "capabilities hftmem lacks" in r]
    assert explain_denial(None) == "run as the same user as the target or as root"
