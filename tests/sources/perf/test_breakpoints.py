"""Who may arm perf breakpoints: the one-line reasons, without changing the machine's sysctl."""

from __future__ import annotations

import pytest

from hftmem_tui.errors import AccessDenied
from hftmem_tui.sources.perf.abi import CAP_PERFMON, CAP_SYS_ADMIN
from hftmem_tui.sources.perf.breakpoints import check_perf_access
from hftmem_tui.sources.watchpoint import WatchLimitError, WatchSpec


def test_root_and_capabilities_grant_access():
    assert check_perf_access(euid=0, caps=0, paranoid=4) == "root"
    assert check_perf_access(euid=1000, caps=1 << CAP_SYS_ADMIN, paranoid=4) == "root"
    assert check_perf_access(euid=1000, caps=1 << CAP_PERFMON, paranoid=4) == "CAP_PERFMON"
    assert check_perf_access(euid=1000, caps=0, paranoid=2) == "perf_event_paranoid=2"


def test_paranoid_too_high_says_what_is_missing():
    with pytest.raises(AccessDenied) as e:
        check_perf_access(1234, euid=1000, caps=0, paranoid=3)
    msg = str(e.value)
    assert "\n" not in msg
    assert "perf_event_paranoid is 3" in msg and "not root" in msg and "CAP_PERFMON" in msg and "--via gdb" in msg


def test_no_perf_events_in_the_kernel():
    with pytest.raises(AccessDenied, match="no perf events"):
        check_perf_access(euid=1000, caps=0, paranoid=None)


def test_read_only_access_refused_before_anything_is_armed():
    from hftmem_tui.sources.perf.breakpoints import PerfWatch

    with pytest.raises(WatchLimitError, match="no read-only hardware breakpoints: watch with access rw"):
        PerfWatch(1, WatchSpec(0x1000, 8, "read", "x"))
