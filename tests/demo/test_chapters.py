"""Tour chapters: texts point at real code and panes; predicates decide only from the data given."""

from __future__ import annotations

import dataclasses

import pytest

from hftmem_tui.demo.chapters import (
    CHAPTERS,
    PACKED_RING,
    PANES,
    PLAIN_RING,
    chapter_names,
    find_chapter,
)
from hftmem_tui.demo.tour_state import TourProgress
from hftmem_tui.model.decode import EngineStats
from hftmem_tui.sources.engine import SCENARIOS
from hftmem_tui.sources.procfs import Mapping
from hftmem_tui.sources.symbols import check_symbol_expr
from tests.conftest import ROOT
from tests.helpers import MIB, tour_sample


def heap(rss_kb: int) -> Mapping:
    return Mapping(0x5000, 0x5000 + rss_kb * 1024, "rw-p", 0, "00:00", 0, "[heap]", size_kb=rss_kb, rss_kb=rss_kb)


def run(name, baseline, samples):
    return find_chapter(name).observed(baseline, samples)


# --------------------------------------------------------------------------- the texts


def test_one_chapter_per_scenario_in_engine_order():
    assert chapter_names() == SCENARIOS
    assert all(c.scenario == c.name for c in CHAPTERS)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=chapter_names())
def test_chapter_quotes_real_code_and_names_a_pane(chapter):
    source = (ROOT / chapter.source).read_text()
    assert chapter.code in source, f"{chapter.name}: quoted line not in {chapter.source}"
    assert chapter.pane in PANES and chapter.highlight
    assert chapter.gauge in {f.name for f in dataclasses.fields(EngineStats)}
    assert chapter.gauge_value(tour_sample(0.0, **{chapter.gauge: 42})) == 42 and chapter.gauge_value(None) is None
    assert 2 <= chapter.bug.count(". ") + 1 <= 4  # two or three sentences
    assert chapter.fix and chapter.look and chapter.confirm and chapter.timeout_s > 0
    if chapter.watch is not None:
        check_symbol_expr(chapter.watch)  # a target `hftmem watch` accepts (resolved live in integration)


def test_corruption_chapters_suggest_a_watch():
    for name in ("use-after-free", "overflow", "double-free", "pool-exhaustion"):
        assert find_chapter(name).watch
    assert find_chapter("overflow").watch == "hftmem_last_order.price"  # the field after symbol[8]


def test_unknown_chapter():
    with pytest.raises(KeyError, match="known: leak"):
        find_chapter("heap-spray")


# --------------------------------------------------------------------------- counter chapters

COUNTERS = {"use-after-free": "pool_poison_violations", "overflow": "corrupted_orders",
            "double-free": "pool_double_frees"}


@pytest.mark.parametrize("name", list(COUNTERS))
def test_counter_chapter_observed_when_counter_rises_with_bug_on(name):
    counter = COUNTERS[name]
    base = tour_sample(0.0, **{counter: 5})
    got = run(name, base, [tour_sample(0.25, scenarios=[name], **{counter: 5}), tour_sample(0.5, scenarios=[name], **{counter: 17})])
    assert got.observed and got.numbers[counter] == 12 and f"{counter} +12" in got.summary


@pytest.mark.parametrize("name", list(COUNTERS))
def test_counter_chapter_not_observed_when_flat_or_bug_not_reported(name):
    counter = COUNTERS[name]
    base = tour_sample(0.0, **{counter: 5})
    flat = run(name, base, [tour_sample(1.0, scenarios=[name], **{counter: 5})])
    assert not flat.observed and "unchanged" in flat.summary
    # The counter rose but the engine never said the bug was on: not this chapter's doing.
    other = run(name, base, [tour_sample(1.0, **{counter: 50})])
    assert not other.observed and "does not report" in other.summary
    assert not run(name, base, []).observed


# --------------------------------------------------------------------------- leak


def leak_run(rss_per_s_mib, leaked_per_s, n=8, step=0.25, with_maps=False):
    out = []
    for i in range(1, n + 1):
        t = i * step
        maps = (heap(int(1024 + t * rss_per_s_mib * 1024)),) if with_maps else None
        out.append(tour_sample(t, 100 + t * rss_per_s_mib, scenarios=["leak"], leaked_bytes=int(t * leaked_per_s),
                          mappings=maps))
    return out


def test_leak_observed_with_slope_and_growing_mapping():
    base = tour_sample(0.0, 100, mappings=(heap(1024),))
    got = run("leak", base, leak_run(2.0, 2 * MIB, with_maps=True))
    assert got.observed
    assert got.numbers["slope_mib_per_min"] == pytest.approx(120, rel=0.02)
    assert got.numbers["leaked_bytes"] == 4 * MIB and "[heap] +4.0 MiB" in got.summary


def test_leak_not_observed_when_rss_flat_or_counter_flat():
    base = tour_sample(0.0, 100)
    assert not run("leak", base, leak_run(0.0, 2 * MIB)).observed  # counter says leak, RSS does not grow
    assert not run("leak", base, leak_run(2.0, 0)).observed  # RSS grows, not through the leak
    assert not run("leak", base, leak_run(2.0, 2 * MIB, n=2)).observed  # too few points for a verdict


# --------------------------------------------------------------------------- hot-alloc


def test_hot_alloc_needs_an_allocation_per_message():
    base = tour_sample(0.0, messages=1000, hot_path_allocs=3)
    got = run("hot-alloc", base, [tour_sample(0.5, scenarios=["hot-alloc"], messages=51000, hot_path_allocs=100003)])
    assert got.observed and got.numbers["allocs_per_message"] == 2.0 and got.numbers["allocs_per_second"] == 200000
    few = run("hot-alloc", base, [tour_sample(0.5, scenarios=["hot-alloc"], messages=51000, hot_path_allocs=40)])
    assert not few.observed  # a stray allocation is not an allocation per message


# --------------------------------------------------------------------------- fragmentation


def frag_run(live, faults_per_step=400, rss_per_s_mib=4.0, n=8, step=0.25):
    return [tour_sample(i * step, 100 + i * step * rss_per_s_mib, minflt=1000 + i * faults_per_step,
                   scenarios=["fragmentation"], frag_live_bytes=live) for i in range(1, n + 1)]


def test_fragmentation_observed_when_rss_outgrows_live_bytes():
    got = run("fragmentation", tour_sample(0.0, 100), frag_run(live=100 * 1024))
    assert got.observed and got.numbers["minor_faults"] == 3200
    assert got.numbers["rss_growth_bytes"] == 8 * MIB and "(82x)" in got.summary


def test_fragmentation_not_observed_for_a_leak_shape_or_without_faults():
    base = tour_sample(0.0, 100)
    assert not run("fragmentation", base, frag_run(live=6 * MIB)).observed  # live grows like RSS: a leak
    assert not run("fragmentation", base, frag_run(live=100 * 1024, faults_per_step=0)).observed
    assert not run("fragmentation", base, frag_run(live=100 * 1024, rss_per_s_mib=0.0)).observed


# --------------------------------------------------------------------------- false-sharing


def fs_sample(t, plain, packed, windows, rate=100000, ns=110, on=True):
    return tour_sample(t, scenarios=["false-sharing"] if on else [], rings=((PLAIN_RING, plain), (PACKED_RING, packed)),
                  window_index=windows, msgs_per_sec=rate, ring_ns_per_msg=ns)


def test_false_sharing_observed_when_packed_ring_carries_traffic_after_a_full_window():
    base = fs_sample(0.0, 500000, 0, 10, on=False)
    samples = [fs_sample(1.0, 510000, 90000, 11, ns=130), fs_sample(2.0, 510000, 190000, 12, rate=98000, ns=140)]
    got = run("false-sharing", base, samples)
    assert got.observed and got.numbers["packed_ring_pushed"] == 190000
    assert "msgs/s 100000 -> 98000 (-2.0%)" in got.summary and "ring ns/msg 110 -> 140" in got.summary


def test_false_sharing_not_observed_while_padded_ring_still_moves_or_window_incomplete():
    base = fs_sample(0.0, 500000, 0, 10, on=False)
    moving = [fs_sample(1.0, 510000, 90000, 11), fs_sample(2.0, 520000, 190000, 12)]
    assert not run("false-sharing", base, moving).observed
    young = [fs_sample(0.3, 510000, 30000, 10), fs_sample(0.6, 510000, 60000, 11)]
    assert not run("false-sharing", base, young).observed
    assert not run("false-sharing", base, [fs_sample(1.0, 510000, 90000, 12)]).observed  # one sample: no idle proof


# --------------------------------------------------------------------------- pool-exhaustion


def test_pool_exhaustion_needs_full_pool_and_rejects():
    base = tour_sample(0.0, pool_live=64)
    got = run("pool-exhaustion", base, [tour_sample(0.3, scenarios=["pool-exhaustion"], pool_live=4096, pool_rejects=900)])
    assert got.observed and "4096/4096" in got.summary and got.numbers["pool_rejects"] == 900
    assert not run("pool-exhaustion", base, [tour_sample(0.3, scenarios=["pool-exhaustion"], pool_live=3000)]).observed
    assert not run("pool-exhaustion", base, [tour_sample(0.3, scenarios=["pool-exhaustion"], pool_live=4000,
                                                     pool_rejects=9)]).observed


# --------------------------------------------------------------------------- progress file


def test_progress_round_trip_and_damaged_file(tmp_path):
    path = tmp_path / "hftmem" / "tour.json"
    assert TourProgress.load(path) == TourProgress()
    TourProgress("overflow", {"leak": "RSS growing"}).save(path)
    assert TourProgress.load(path, chapter_names()) == TourProgress("overflow", {"leak": "RSS growing"})
    path.write_text('{"version": 1, "current": "gone", "observed": {"gone": "x", "leak": "y"}}')
    assert TourProgress.load(path, chapter_names()) == TourProgress(None, {"leak": "y"})
    path.write_text("{not json")
    assert TourProgress.load(path) == TourProgress()
    assert [p.name for p in path.parent.iterdir()] == ["tour.json"]  # no temp files left


def test_progress_default_path_follows_xdg_state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    TourProgress("leak").save()
    assert (tmp_path / "hftmem" / "tour.json").is_file()
