"""take_snapshot on the real engine: one sample of the live sampler, every part read."""

from __future__ import annotations

import dataclasses

from hftmem_tui.feeds.snapshot import snapshot_json, take_snapshot
from hftmem_tui.sources import procfs


def test_a_snapshot_is_one_full_sample_with_the_targets_identity(engine):
    pid = engine()
    s = take_snapshot(pid, perf_ms=None)
    assert s.seq == 1 and s.pid == s.target.pid == pid and s.target.engine
    assert s.target.start_ticks == procfs.read_stat(pid).starttime_ticks > 0  # (pid, start) names the process
    assert s.rollup is not None and s.mappings and s.engine is not None and len(s.allocators) == 4
    assert s.perf is None and s.notes == ()
    assert snapshot_json(s)["numa"] == (None if s.numa is None else [dataclasses.asdict(n) for n in s.numa])

