"""Before gdb attaches: every refusal in one sentence, checked on the real engine (no sysctl touched)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from hftmem_tui.errors import AccessDenied, NoDebugInfo
from hftmem_tui.sources import procfs
from hftmem_tui.sources.gdb.preflight import CAP_SYS_PTRACE, check_attach
from tests.conftest import stop_process

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")


def test_ptrace_scope_and_other_users_explained(engine):
    """Yama and uid refusals, checked with this engine but another caller's rights (no sysctl touched)."""
    pid = engine()
    with pytest.raises(AccessDenied, match="ptrace_scope is 1"):
        check_attach(pid, scope=1, euid=12345, caps=0)
    with pytest.raises(AccessDenied, match="ptrace_scope is 2"):
        check_attach(pid, scope=2, euid=12345, caps=0)
    with pytest.raises(AccessDenied, match="ptrace_scope is 3"):
        check_attach(pid, scope=3, euid=0, caps=0)
    with pytest.raises(AccessDenied, match="belongs to uid 0"):
        check_attach(pid, scope=0, euid=12345, caps=0)
    assert check_attach(pid, scope=1, euid=12345, caps=1 << CAP_SYS_PTRACE).endswith("hftmem-engine")


def test_no_debug_info_refused(engine_binary, tmp_path):
    stripped = tmp_path / "hftmem-engine-stripped"
    subprocess.run(["objcopy", "--strip-debug", str(engine_binary), str(stripped)], check=True)
    proc = subprocess.Popen([str(stripped), "--control", f"hftmem-test-stripped-{os.getpid()}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not procfs.read_link(proc.pid, "exe").endswith(stripped.name):  # until the exec is done
            assert time.monotonic() < deadline, "the stripped engine did not start"
            time.sleep(0.01)
        with pytest.raises(NoDebugInfo, match="no debug info"):
            check_attach(proc.pid)
    finally:
        stop_process(proc.pid)
