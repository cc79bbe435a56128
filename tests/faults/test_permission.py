"""A root-owned engine inspected by a real unprivileged user: one "permission denied" line per command."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig

import pytest

from tests.conftest import ROOT
from tests.faults.conftest import assert_running_untraced, one_line
from tests.helpers import free_port

pytestmark = pytest.mark.fault

USER = "hftmem-fault"


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                       check=True, capture_output=True)
        return pwd.getpwnam(USER)


@pytest.fixture(scope="module")
def as_user(tmp_path_factory):
    """Run `hftmem` as USER (created if missing) through runuser: returns run(*args)."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and runuser to act as another user")
    user = _ensure_user()
    home = tmp_path_factory.mktemp("unprivileged")
    os.chown(home, user.pw_uid, user.pw_gid)
    os.chmod(home, 0o700)
    paths = sysconfig.get_paths()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"),
           "PYTHONPATH": os.pathsep.join(dict.fromkeys([str(ROOT), paths["purelib"], paths["platlib"]]))}
    # Our interpreter may live where the user cannot go (pyenv under /root): take the first one that
    # runs for the user and imports hftmem with our packages (same Python minor version).
    tried = []
    for python in dict.fromkeys([sys.executable, getattr(sys, "_base_executable", sys.executable),
                                 f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"]):
        probe = subprocess.run(["runuser", "-u", USER, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()],
                                python, "-c", "import hftmem_tui.cli, psutil, pygdbmi"],
                               capture_output=True, text=True, cwd=home, timeout=30)
        if probe.returncode == 0:
            break
        tried.append(f"{python}: {probe.stderr.strip().splitlines()[-1:] or probe.returncode}")
    else:
        pytest.skip(f"no Python that {USER} may run imports hftmem: {'; '.join(tried)}")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", USER, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()],
                               python, "-m", "hftmem_tui.cli", *args], capture_output=True, text=True,
                              cwd=home, timeout=60)

    run.home = home  # type: ignore[attr-defined]
    return run


def test_unprivileged_user_on_a_root_engine_gets_one_permission_line(engine, as_user):
    pid = engine()
    assert os.stat(f"/proc/{pid}").st_uid == 0
    out = as_user.home / "r.jsonl"
    for args in (("snapshot", str(pid)), ("snapshot", str(pid), "--json", "--no-perf"),
                 ("dump", str(pid), "hftmem_engine_stats"), ("dump", str(pid), "0x1000", "--len", "8"),
                 ("audit", str(pid), "--window", "0"), ("record", str(pid), "--out", str(out)),
                 ("export", str(pid), "--listen", f"127.0.0.1:{free_port()}"),
                 ("allocs", str(pid), "--duration", "0.5", "--warmup", "0.1")):
        r = as_user(*args)
        assert r.returncode == 1 and r.stdout == "", (args, r.stdout, r.stderr)
        one_line(r.stderr, "permission denied", str(pid))
    assert not out.exists()
    assert_running_untraced(pid)
