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

from hftmem_tui.sources.process import die_with_parent
from tests.conftest import ROOT, proc_status, run_cli, stop_process

COMM = "\x1b]0;pwned\x07"
THREADS = ("[/]", "[bold red]x")
# "/" cannot be in a file name: the hostile path is three levels, read back as one mapping name.
MARKUP_PATH = ("\x1b[2J[", "][link=file:", "]a\x1b[?1049l")  # the CLI shows the base name
BAD_UTF8 = b"bad\xff\xfe\x9b[31m\xe2\x80\xaename"  # \xe2\x80\xae: U+202E, right-to-left override

CHILD = r"""
import ctypes, mmap, os, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
def name(b):  # PR_SET_NAME names the calling thread (the main thread's name is the comm)
    libc.prctl(15, ctypes.c_char_p(b), 0, 0, 0)
maps = []
for hexpath in sys.argv[2:]:
    fd = os.open(bytes.fromhex(hexpath), os.O_RDONLY)
    maps.append(mmap.mmap(fd, 4096, prot=mmap.PROT_READ))
started = []
def worker(n):
    name(n)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.3:  # CPU time once: the audit lists it as a "busy" thread
        pass
    started.append(n)
    threading.Event().wait()
for n in sys.argv[1].split("\x1f"):
    threading.Thread(target=worker, args=(n.encode(),), daemon=True).start()
while len(started) < len(sys.argv[1].split("\x1f")):
    pass
name(%r)
print("ready", flush=True)
sys.stdin.read()
""" % COMM.encode()


def hostile_paths(tmp: Path) -> list[bytes]:
    """Create the two hostile files (4 KiB each) under ``tmp``; their paths as bytes."""
    d = tmp / MARKUP_PATH[0] / MARKUP_PATH[1]
    d.mkdir(parents=True)
    paths = [os.fsencode(d / MARKUP_PATH[2]), os.fsencode(tmp) + b"/" + BAD_UTF8]
    for p in paths:
        with open(p, "wb") as f:
            f.write(b"\0" * 4096)
    return paths


def start_hostile(tmp: Path) -> tuple[subprocess.Popen, list[bytes]]:
    """The hostile target, running, with its threads named and its files mapped."""
    paths = hostile_paths(tmp)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, "\x1f".join(THREADS), *(p.hex() for p in paths)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=die_with_parent)
    assert proc.stdout.readline() == b"ready\n"
    return proc, paths


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
