from __future__ import annotations

from dataclasses import replace

from hftmem_tui.model.deltas import mapping_deltas, summarize_by_kind
from hftmem_tui.sources.procfs import Mapping, parse_smaps
from tests.conftest import FIXTURES

FIX = FIXTURES / "proc"


def m(start, path="", size=4, rss=4, dirty=0):
    return Mapping(start, start + size * 1024, "rw-p", 0, "00:00", 0, path, size_kb=size,
                   rss_kb=rss, private_dirty_kb=dirty)


def test_growth_new_and_vanished():
    before = [m(0x1000, "[heap]", 132, 16), m(0x9000, "", 8, 8), m(0x20000, "/lib/libc.so.6", 100, 50)]
    after = [m(0x1000, "[heap]", 1132, 916, dirty=900), m(0x20000, "/lib/libc.so.6", 100, 50),
             m(0x40000, "", 64, 64)]
    d = mapping_deltas(before, after)
    assert [(x.name, x.kind, x.rss_delta_kb, x.size_delta_kb, x.dirty_delta_kb) for x in d.changed] == [
        ("[ anon ]", "heap", 900, 1000, 900)]
    assert [x.start for x in d.new] == [0x40000] and [x.start for x in d.vanished] == [0x9000]
    assert d.rss_delta_kb == 900 + 64 - 8
    assert d.rss_delta_by_kind() == {"heap": 900, "anon": 56}


def test_same_address_other_file_is_vanished_plus_new():
    d = mapping_deltas([m(0x1000, "/a")], [m(0x1000, "/b")])
    assert not d.changed and len(d.new) == 1 and len(d.vanished) == 1


def test_identical_samples_have_no_deltas():
    maps = parse_smaps((FIX / "sleep_smaps").read_text())
    d = mapping_deltas(maps, maps)
    assert d.changed == () and d.new == () and d.vanished == () and d.rss_delta_kb == 0


def test_changed_sorted_by_largest_rss_change():
    maps = parse_smaps((FIX / "sleep_smaps").read_text())
    after = [replace(x, rss_kb=x.rss_kb + (i % 3) * 4) for i, x in enumerate(maps)]
    deltas = [x.rss_delta_kb for x in mapping_deltas(maps, after).changed]
    assert deltas == sorted(deltas, key=abs, reverse=True) and set(deltas) == {4, 8}


def test_summary_by_kind_matches_totals():
    maps = parse_smaps((FIX / "sleep_smaps").read_text())
    s = summarize_by_kind(maps)
    assert sum(k.count for k in s.values()) == len(maps)
    assert sum(k.rss_kb for k in s.values()) == sum(x.rss_kb for x in maps)
    assert s["heap"].count == 1 and s["stack"].count == 1 and s["vdso"].count == 1
    assert list(s)[0] == "file"  # largest RSS first
