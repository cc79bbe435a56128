"""Hostile names from a real target reach CLI text output as visible escapes, never as control bytes.

The target is a real process started here (a Python child): its comm sets the window title, two
threads are named like Rich markup, and it maps a file whose path is escapes + markup and one whose
name is not UTF-8. ``--json`` keeps the exact names (JSON-escaped; undecodable bytes as ``\\udcXX``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, proc_status, run_cli, stop_process
from tests.hostile import COMM, THREADS, start_hostile


@pytest.fixture
def hostile(tmp_path) -> Iterator[tuple[int, list[bytes]]]:
    proc, paths = start_hostile(tmp_path)
    try:
        yield proc.pid, paths
    finally:
        proc.stdin.close()
        stop_process(proc.pid)


def assert_no_raw_controls(out: str) -> None:
    """No ESC, BEL, C1 or bidi control, no undecodable byte: only line breaks."""
    bad = [c for c in out if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f or 0xd800 <= ord(c) <= 0xdfff
           or 0x202a <= ord(c) <= 0x202e or 0x2066 <= ord(c) <= 0x2069]
    assert not bad, bad[:5]


def run_bytes(*args: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "hftmem_tui.cli", *args], capture_output=True, timeout=60,
                          env=env, cwd=ROOT)


ENVS = [{}, {"PYTHONIOENCODING": "utf-8"}, {"LANG": "C", "LC_ALL": "C"}]
ESCAPED_COMM = "\\x1b]0;pwned\\x07"
ESCAPED_MARKUP = "]a\\x1b[?1049l"
ESCAPED_BAD = "bad\\xff\\xfe\\x9b[31m\\u202ename"


@pytest.mark.parametrize("env", ENVS, ids=["default", "strict-utf8", "C-locale"])
def test_snapshot_text_shows_escapes(hostile, env):
    pid, _ = hostile
    r = run_bytes("snapshot", str(pid), "--no-perf", env_extra=env)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode("utf-8")  # strict: nothing undecodable reached stdout
    assert_no_raw_controls(out)
    assert_no_raw_controls(r.stderr.decode("utf-8"))
    assert f"pid {pid} {ESCAPED_COMM}" in out
    assert ESCAPED_MARKUP in out and ESCAPED_BAD in out


def test_snapshot_json_keeps_exact_names(hostile):
    pid, paths = hostile
    r = run_cli("snapshot", str(pid), "--no-perf", "--json")
    assert r.returncode == 0, r.stderr
    assert r.stdout.isascii()  # JSON-escaped, so no control byte either
    snap = json.loads(r.stdout)
    names = [m["path"] for m in snap["mappings"]]
    assert os.fsdecode(paths[0]) in names
    assert os.fsdecode(paths[1]) in names  # "\udcff": .encode("utf-8", "surrogateescape") gives the bytes
    assert snap["status"]["name"] == COMM


@pytest.mark.parametrize("env", ENVS[:2], ids=["default", "strict-utf8"])
def test_audit_text_shows_escapes(hostile, env):
    pid, _ = hostile
    r = run_bytes("audit", str(pid), "--window", "0", env_extra=env)
    assert r.returncode in (0, 1), r.stderr  # exit code is the verdict; no traceback
    assert b"Traceback" not in r.stderr
    out = r.stdout.decode("utf-8")
    assert_no_raw_controls(out)
    assert_no_raw_controls(r.stderr.decode("utf-8"))
    assert all(t in out for t in THREADS), out  # the busy-thread evidence names them, as text


def test_threads_really_have_the_hostile_names(hostile):
    """The target is what the test says it is (else the tests above prove nothing)."""
    pid, _ = hostile
    names = {Path(f"/proc/{pid}/task/{t}/comm").read_bytes().rstrip(b"\n") for t in os.listdir(f"/proc/{pid}/task")}
    assert {COMM.encode(), *(t.encode() for t in THREADS)} <= names
    assert not proc_status(pid)["State"].startswith(("T", "t", "Z"))
