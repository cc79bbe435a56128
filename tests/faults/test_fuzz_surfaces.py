"""Fuzzing the two network-ish surfaces: the engine's control socket and `hftmem export`'s HTTP.

Whatever bytes arrive, from another uid or from root: the engine keeps running untraced with its
scenarios unchanged, and the exporter keeps serving correct metrics with no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hftmem_tui.errors import SourceError
from hftmem_tui.sources.engine import EngineControl
from tests.faults.conftest import assert_running_untraced
from tests.helpers import free_port, metric_value, scrape_metrics, spawn_cli, wait_for

pytestmark = pytest.mark.fault
NOBODY = 65534
COMMANDS = (b"on", b"off", b"list", b"status")  # the protocol's words: root's fuzz must not say them

# Sends each hex-encoded message of the JSON list on stdin on its own connection, reads the reply.
FLOOD = r"""
import json, socket, sys
name = "\0" + sys.argv[1]
for msg in json.loads(sys.stdin.read()):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(name)
        s.sendall(bytes.fromhex(msg))
        s.shutdown(socket.SHUT_WR)
        while s.recv(4096):
            pass
    except OSError:
        pass
    finally:
        s.close()
"""

messages = st.lists(st.binary(min_size=0, max_size=600), min_size=1, max_size=12)


def _flood(pid: int, batch: list[bytes], *, as_nobody: bool) -> None:
    who = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if as_nobody else []
    r = subprocess.run([*who, sys.executable, "-I", "-c", FLOOD, f"hftmem-engine-{pid}"], cwd="/",
                       input=json.dumps([m.hex() for m in batch]), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def fuzz_engine(engine_binary):
    proc = subprocess.Popen([str(engine_binary)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def answers() -> bool:
        try:
            return EngineControl(proc.pid).status().ticks > 0
        except SourceError:  # its control socket is not listening yet
            return False

    try:
        wait_for(answers, 20, "the engine to answer")
        yield proc.pid
    finally:  # also when it never answered: no engine is left behind
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def _engine_unchanged(pid: int) -> None:
    assert_running_untraced(pid)
    status = EngineControl(pid).status()
    assert status.scenarios == frozenset(), status
    before = status.ticks
    wait_for(lambda: EngineControl(pid).status().ticks > before, 10, "the engine to keep ticking")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=messages)
def test_control_socket_from_another_uid(fuzz_engine, batch):
    _flood(fuzz_engine, batch + [b"on leak\n", b"on pool-exhaustion\n"], as_nobody=True)
    _engine_unchanged(fuzz_engine)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=messages)
def test_control_socket_garbage_from_root(fuzz_engine, batch):
    batch = [m for m in batch if not any(line.strip().startswith(COMMANDS) for line in m.split(b"\n"))]
    _flood(fuzz_engine, batch, as_nobody=False)
    _engine_unchanged(fuzz_engine)


@pytest.fixture(scope="module")
def exporter(engine_binary):
    engine = subprocess.Popen([str(engine_binary)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    try:
        exp = spawn_cli("export", str(engine.pid), "--listen", f"127.0.0.1:{port}", "--interval", "0.25", "--no-perf")
        try:
            scrape_metrics(port)
            yield engine.pid, port, exp
        finally:
            exp.send_signal(signal.SIGTERM)
            _, err = exp.communicate(timeout=20)
    finally:
        engine.send_signal(signal.SIGTERM)
        engine.wait(timeout=10)
    assert "Traceback" not in err, err


methods = st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"\x00\xff", b"G" * 300])
paths = st.one_of(st.sampled_from([b"/metrics", b"/", b"/metrics?x=1", b"*", b"/" + b"a" * 9000]),
                  st.binary(max_size=200))
headers = st.lists(st.tuples(st.binary(min_size=1, max_size=40), st.binary(max_size=300)), max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=methods, path=paths, hdrs=headers, body=st.binary(max_size=2000), cut=st.booleans())
def test_exporter_survives_any_request(exporter, method, path, hdrs, body, cut):
    pid, port, exp = exporter
    request = method + b" " + path + b" HTTP/1.1\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in hdrs)
    request += b"Content-Length: %d\r\n\r\n" % len(body) + body
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(request[: len(request) // 2] if cut else request)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except OSError:
            pass  # the server may close on a bad request: what matters is that it still serves
    assert exp.poll() is None, "the exporter died"
    assert metric_value(scrape_metrics(port), "hftmem_target_up") == 1
    assert_running_untraced(pid)
