"""The C++ core's tests and the engine itself under ASan + UBSan."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from hftmem_tui.sources.engine import (
    ENGINE_BINARY,
    SCENARIOS,
    EngineControl,
    build_engine,
    source_dir,
)
from tests.conftest import BUILD
from tests.helpers import wait_for

# The first test pays for compiling the sanitized build (~1-3 min on 2 cores from a clean clone).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def sanitized_build():
    return build_engine(source_dir(), sanitize=True, tests=True, build_dir=BUILD / "test-asan")


def test_cpp_unit_tests_pass_under_asan_ubsan(sanitized_build):
    r = subprocess.run(["ctest", "--test-dir", str(sanitized_build), "--output-on-failure"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "100% tests passed" in r.stdout


def test_engine_with_every_scenario_is_clean_under_asan_ubsan(sanitized_build):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0", UBSAN_OPTIONS="print_stacktrace=1")
    args = [str(sanitized_build / ENGINE_BINARY), "--control", f"hftmem-asan-{os.getpid()}"]
    for s in SCENARIOS:
        args += ["--scenario", s]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        ctl = EngineControl(proc.pid, name=f"hftmem-asan-{os.getpid()}")
        deadline = time.monotonic() + 20
        while True:
            try:
                ctl.status()
                break
            except Exception:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline
                time.sleep(0.1)
        for _ in range(3):  # toggling live must be as safe as starting with them on
            for s in SCENARIOS:
                ctl.set_scenario(s, False)
                ctl.set_scenario(s, True)
            # all on for 2,000 messages: the every-1,000-messages bugs (use-after-free, double free) run twice
            start = ctl.status().messages
            wait_for(lambda: ctl.status().messages >= start + 2000, 30, "2,000 messages with every scenario on")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert "AddressSanitizer" not in err and "runtime error" not in err, err[-3000:]
