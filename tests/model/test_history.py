"""History (model/history.py) and RecordedFeed, fed from the committed leak recording: no process needed."""

from __future__ import annotations

import pytest

from hftmem_tui.feeds.feed import FeedEnded, SampleFeed
from hftmem_tui.feeds.recording import RecordedFeed
from hftmem_tui.model.history import History, mapping_key
from tests.conftest import FIXTURES

LEAK = str(FIXTURES / "recordings" / "leak_40s.jsonl")


def test_recorded_feed_is_a_feed_and_ends():
    feed = RecordedFeed(LEAK)
    assert isinstance(feed, SampleFeed) and feed.live is False
    info = feed.start()
    assert info.comm == "hftmem-engine" and info.pid == feed.pid
    first = feed.sample()
    assert first.mappings is not None  # the first sample of a file carries every mapping
    assert first.engine is not None and len(first.engine.max_gap_hist) == 64
    kinds = {type(v).__name__ for v in first.allocators}
    assert kinds == {"PoolView", "ArenaView", "RingView"}
    n = 1
    while True:
        try:
            feed.sample()
        except FeedEnded:
            break
        n += 1
    assert n == len(feed.samples) > 30
    with pytest.raises(FeedEnded):
        feed.sample()


def test_history_sees_the_recorded_leak():
    feed = RecordedFeed(LEAK)
    h = History()
    verdicts = []
    for s in feed.samples:
        h.add(s)
        verdicts.append(h.leak.verdict)
    assert verdicts[0] == "insufficient data"
    assert verdicts[-1] == "growing"
    assert h.leak.slope_mib_per_min > 10  # the leak scenario leaks ~2 MiB/s
    assert h.leak_since is not None and h.leak_since >= feed.samples[0].time
    assert len(h.rss) == len(feed.samples)
    assert h.peak_rss_kb >= max(s.status.vm_rss_kb for s in feed.samples)
    # Loop gaps: one point per engine window, windows strictly increasing, backfilled at attach.
    windows = h.gap_max.times()
    assert windows == sorted(set(windows)) and len(windows) >= len(feed.samples) - 2
    # Fault rates come from the cumulative counters: one rate per sample after the first.
    assert len(h.minflt) == len(feed.samples) - 1
    # The heap grows with the leak: growth since attach is positive for [heap] or an anon mapping.
    grown = [m for m in h.mappings if h.growth[mapping_key(m)].since_attach_kb > 0]
    assert grown and all(h.growing(mapping_key(m)) for m in grown)


def test_flat_rss_is_not_a_leak():
    feed = RecordedFeed(LEAK)
    import dataclasses

    h = History()
    base = feed.samples[0]
    for i, s in enumerate(feed.samples):  # the same timestamps with the first RSS held constant
        h.add(dataclasses.replace(s, status=dataclasses.replace(s.status, vm_rss_kb=base.status.vm_rss_kb + i % 2 * 4)))
    assert h.leak.verdict == "flat"
    assert h.leak_since is None


def test_perf_rates_are_per_second():
    feed = RecordedFeed(LEAK)
    h = History()
    for s in feed.samples:
        h.add(s)
    with_perf = [s for s in feed.samples if s.perf is not None and s.perf.span_s]
    assert with_perf
    last = with_perf[-1]
    for event, value in last.perf.values.items():
        assert h.perf[event].last()[1] == pytest.approx(value / last.perf.span_s)
