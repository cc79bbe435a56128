"""Per-thread CPU ticks, through procfs."""

from __future__ import annotations

import pytest

from hftmem_tui.errors import NoSuchProcess
from hftmem_tui.probes import thread_cpu_ticks
from tests.conftest import proc_status


def test_engine_threads_by_name_and_cpu(engine):
    pid = engine()
    ticks = thread_cpu_ticks(pid)
    names = {name for name, _ in ticks.values()}
    assert {"hftmem-strat", "hftmem-md"} <= names
    assert len(ticks) == int(proc_status(pid)["Threads"])
    assert all(isinstance(t, int) and t >= 0 for _, t in ticks.values())


def test_no_such_process():
    with pytest.raises(NoSuchProcess):
        thread_cpu_ticks(99999999)
