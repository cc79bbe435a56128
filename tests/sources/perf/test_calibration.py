"""One per-boot cost cache for breakpoint hits and uprobe calls, measured on ourselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hftmem_tui.errors import SourceError
from hftmem_tui.sources import procfs
from hftmem_tui.sources.perf.uprobes import find_tracefs, list_session_probes
from tests.conftest import ROOT

try:
    _ok = os.access(os.path.join(find_tracefs(), "uprobe_events"), os.W_OK)
except SourceError:
    _ok = False

_COSTS = ("import json, os; from hftmem_tui.sources.perf.calibration import cost_per_call, cost_per_hit; "
          "print(json.dumps([cost_per_hit(refresh={r}), cost_per_call(refresh={r}), os.getpid()]))")


def _costs(cache, refresh: bool = False) -> list:
    """Both costs from a fresh process (no in-memory memo), with its cache under ``cache``; checks that
    it left no probe behind."""
    r = subprocess.run([sys.executable, "-c", _COSTS.format(r=refresh)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, XDG_CACHE_HOME=str(cache)))
    assert r.returncode == 0, r.stderr
    hit, call, pid = json.loads(r.stdout)
    if _ok:
        assert not list_session_probes(group=f"hftmem_{pid}")  # the calibration probe is gone
    return [hit, call]


@pytest.mark.skipif(not _ok, reason="uprobes need root and a mounted tracefs")
def test_both_costs_measured_once_per_boot_in_one_file(tmp_path):
    hit, call = _costs(tmp_path)
    assert 0 <= hit < 0.01 and 0 <= call < 0.01  # 0 when the machine's noise exceeds the trap
    path = tmp_path / "hftmem" / "perf-cost.json"
    data = json.loads(path.read_text())
    assert data == {"boot_id": procfs.boot_id(), "costs": {"breakpoint_hit_s": hit, "uprobe_call_s": call}}
    assert _costs(tmp_path) == [hit, call]  # read back, not measured again

    path.write_text(json.dumps({"boot_id": "another boot", "costs": {"breakpoint_hit_s": 1.0, "uprobe_call_s": 1.0}}))
    again = _costs(tmp_path)
    assert 1.0 not in again and json.loads(path.read_text())["boot_id"] == procfs.boot_id()

    path.write_text(json.dumps({"boot_id": procfs.boot_id(), "costs": {"breakpoint_hit_s": 1.0, "uprobe_call_s": 1.0}}))
    assert 1.0 not in _costs(tmp_path, refresh=True)  # refresh measures again


def test_unreadable_cache_is_measured_again_and_never_raises(tmp_path):
    (tmp_path / "hftmem").mkdir()
    (tmp_path / "hftmem" / "perf-cost.json").write_text("{not json")
    hit, call = _costs(tmp_path)
    assert hit is None or hit >= 0
    assert call is None or call >= 0
