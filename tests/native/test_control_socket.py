"""The engine's control socket: only its owner and root are served; no client can hold it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from hftmem_tui.sources.engine import EngineControl
from tests.conftest import ROOT, run_cli, stop_process

NOBODY = 65534
STRANGER = 65533  # a third uid, neither the engine's owner nor root


def _as_uid(uid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


AS_NOBODY = _as_uid(NOBODY)

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                reason="needs root and setpriv to act as another uid")

# Connects to @NAME as whoever runs it, sends argv[2] (escapes allowed), prints what came back
# until EOF; with argv[3] = N, holds N idle connections open and prints "held N" instead.
CLIENT = r"""
import socket, sys, time
name = "\0" + sys.argv[1]
if len(sys.argv) > 3:
    held = []
    for _ in range(int(sys.argv[3])):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(name)
        held.append(s)
    print("held", len(held), flush=True)
    sys.stdin.read()  # until the test closes our stdin
    sys.exit(0)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(name)
try:
    s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
except OSError:
    pass
out = b""
while True:
    try:
        chunk = s.recv(4096)
    except ConnectionResetError:
        break
    if not chunk:
        break
    out += chunk
sys.stdout.write(out.decode(errors="replace"))
"""


def _client_as(uid: int, name: str, payload: str) -> str:
    r = subprocess.run([*_as_uid(uid), sys.executable, "-I", "-c", CLIENT, name, payload],
                       capture_output=True, text=True, timeout=30, cwd="/")
    assert r.returncode == 0, r.stderr
    return r.stdout


def _status(pid: int):
    return EngineControl(pid).status()


def test_another_uid_is_refused_with_a_reason_and_nothing_it_sends_is_acted_on(engine):
    pid = engine()
    before = _status(pid)
    out = _client_as(NOBODY, f"hftmem-engine-{pid}", r"on leak\non pool-exhaustion\nstatus\n")
    assert out == f"ERR refused: uid {NOBODY} is not the engine's owner (uid 0) or root\n"
    after = _status(pid)
    assert after.scenarios == before.scenarios == frozenset()
    assert after.ticks > before.ticks  # still running, and still serving its owner


def test_the_cli_as_another_uid_says_refused_in_one_line(engine):
    pid = engine()
    r = subprocess.run([*AS_NOBODY, sys.executable, "-m", "hftmem_tui.cli", "scenario", str(pid), "--on", "leak"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        f"hftmem: engine {pid} refused this client: uid {NOBODY} is not the engine's owner (uid 0) or root"]
    assert _status(pid).scenarios == frozenset()


def test_root_is_served_by_an_engine_another_uid_owns_and_a_third_uid_is_not(engine_binary):
    name = f"hftmem-nobody-{os.getpid()}"
    proc = subprocess.Popen([*AS_NOBODY, str(engine_binary), "--control", name],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
    try:
        ctl = EngineControl(proc.pid, name=name)
        deadline = time.monotonic() + 10
        while True:
            try:
                ctl.set_scenario("leak", True)
                break
            except Exception:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        out = _client_as(STRANGER, name, r"off leak\n")
        assert out == f"ERR refused: uid {STRANGER} is not the engine's owner (uid {NOBODY}) or root\n"
        assert ctl.status().scenarios == frozenset({"leak"})
    finally:
        stop_process(proc.pid)


def _hold(name: str, count: int, *, as_nobody: bool) -> subprocess.Popen:
    cmd = [*(AS_NOBODY if as_nobody else []), sys.executable, "-I", "-c", CLIENT, name, "", str(count)]
    holder = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd="/")
    assert holder.stdout.readline() == f"held {count}\n"
    return holder


def _release(holder: subprocess.Popen) -> None:
    holder.stdin.close()
    holder.wait(timeout=10)


@pytest.mark.parametrize("as_nobody", [True, False], ids=["another-uid", "root"])
def test_forty_idle_connections_do_not_lock_the_owner_out(engine, as_nobody):
    pid = engine()
    holder = _hold(f"hftmem-engine-{pid}", 40, as_nobody=as_nobody)
    try:
        started = time.monotonic()
        r = run_cli("scenario", str(pid), "--on", "leak", timeout=30)
        assert r.returncode == 0, r.stderr
        assert "scenarios=leak" in r.stdout
        assert holder.poll() is None, "the 40 connections were held for the whole request"
        assert time.monotonic() - started < 15  # the CLI's own 2 s control timeout did not fire
    finally:
        _release(holder)


def test_a_connection_without_a_newline_is_closed_after_the_time_limit(engine):
    pid = engine()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(f"\0hftmem-engine-{pid}")
        s.sendall(b"status")  # no newline, ever
        started = time.monotonic()
        got = b""
        while chunk := s.recv(4096):  # until the engine's EOF
            got += chunk
        waited = time.monotonic() - started
    assert got == b"ERR timeout: no complete request line within 2 s\n"
    assert 1.5 < waited < 30
    assert _status(pid).pid == pid


def test_more_than_eight_clients_at_once_are_told_busy(engine):
    pid = engine()
    name = f"\0hftmem-engine-{pid}"
    socks = []
    try:
        for _ in range(9):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(name)
            socks.append(s)
        ninth = socks[-1]
        try:
            ninth.sendall(b"status\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # already refused and closed: the reason waits in our buffer
        reply = ninth.recv(4096)
        if reply == b"ERR busy: 8 clients connected\n":
            try:
                assert ninth.recv(4096) == b""  # and closed
            except ConnectionResetError:
                pass  # closed with our request unread: the kernel says reset, not EOF
        else:
            # Only if this machine took over 250 ms to open them: then an idle slot was handed on.
            assert reply.startswith(b"ok pid="), reply
            idle = [s.recv(4096) for s in socks[:8]]
            assert any(m.startswith(b"ERR idle: closed to make room") for m in idle), idle
    finally:
        for s in socks:
            s.close()
    assert _status(pid).pid == pid


def test_a_full_house_of_idle_clients_hands_a_slot_to_the_owner(engine):
    pid = engine()
    idle = []
    try:
        for _ in range(8):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(f"\0hftmem-engine-{pid}")
            idle.append(s)
        # Busy at first; the client retries until the longest-idle slot is 250 ms old and handed on.
        assert EngineControl(pid).status().pid == pid
        said = [s.recv(4096) for s in idle]
    finally:
        for s in idle:
            s.close()
    assert sum(m.startswith(b"ERR idle: closed to make room for a new client") for m in said) == 1, said
