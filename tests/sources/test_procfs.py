"""procfs parsers against files captured from this machine's /proc (tests/fixtures/proc)."""

from __future__ import annotations

import dataclasses
import gzip
import os
import time

import pytest

from hftmem_tui.errors import NoSuchProcess, SymbolNotFound
from hftmem_tui.sources import procfs
from hftmem_tui.sources.procfs import (
    Mapping,
    parse_maps,
    parse_numa_maps,
    parse_smaps,
    parse_smaps_rollup,
    parse_stat,
    parse_status,
)
from hftmem_tui.sources.procfs import maps as procfs_maps
from tests.conftest import FIXTURES

FIX = FIXTURES / "proc"


def fixture(name: str) -> str:
    path = FIX / name
    if name.endswith(".gz"):
        return gzip.open(path, "rt").read()
    return path.read_text()


def pmap_rows(name: str) -> tuple[list[tuple[int, int, int, int, str, str]], tuple[int, int, int]]:
    """(address, kbytes, rss, dirty, mode, mapping) rows and the total line of a `pmap -x` capture."""
    rows, total = [], None
    for line in fixture(name).splitlines()[2:]:
        if line.startswith("total kB"):
            k, r, d = line.split()[2:5]
            total = (int(k), int(r), int(d))
        elif line and not line.startswith("-"):
            addr, kb, rss, dirty, mode, mapping = line.split(None, 5)
            rows.append((int(addr, 16), int(kb), int(rss), int(dirty), mode, mapping.strip()))
    assert total is not None
    return rows, total


@pytest.mark.parametrize("smaps, pmap", [("sleep_smaps", "sleep_pmap_x.txt"),
                                         ("smaps_many.gz", "pmap_x_many.txt")])
def test_smaps_matches_pmap_x_row_by_row(smaps, pmap):
    maps = parse_smaps(fixture(smaps))
    rows, total = pmap_rows(pmap)
    assert len(maps) == len(rows)
    for m, (addr, kb, rss, dirty, mode, name) in zip(maps, rows):
        assert (m.start, m.size_kb, m.rss_kb, m.dirty_kb, m.mode, m.name) == (addr, kb, rss, dirty, mode, name)
    assert (sum(m.size_kb for m in maps), sum(m.rss_kb for m in maps),
            sum(m.dirty_kb for m in maps)) == total


def test_smaps_fields_of_first_mapping():
    m = parse_smaps(fixture("sleep_smaps"))[0]
    assert m.path == "/usr/bin/sleep" and m.perms == "r--p" and m.offset == 0
    assert m.end - m.start == m.size_kb * 1024
    assert m.kind == "file" and m.name == "sleep"
    assert (m.rss_kb, m.pss_kb, m.shared_clean_kb, m.private_clean_kb, m.referenced_kb) == (8, 4, 8, 0, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.rss_kb = 0  # type: ignore[misc]


def test_kinds_and_names_of_special_mappings():
    maps = {m.path: m for m in parse_smaps(fixture("sleep_smaps"))}
    assert maps["[heap]"].kind == "heap" and maps["[heap]"].name == "[ anon ]"
    assert maps["[stack]"].kind == "stack" and maps["[stack]"].name == "[ stack ]"
    assert maps["[vdso]"].kind == "vdso"
    assert maps["[vvar]"].kind == "special" and maps["[vsyscall]"].kind == "special"
    assert maps[""].kind == "anon" and maps[""].name == "[ anon ]"
    assert any(m.mode == "r--s-" for m in maps.values())  # gconv-modules.cache is MAP_SHARED


def test_unknown_keys_ignored_missing_keys_zero_and_slow_path_agrees():
    text = fixture("sleep_smaps")
    # A future kernel key, and one block losing its Swap line: forces the line-by-line path.
    lines = text.split("\n")
    lines.insert(2, "FutureKey:            7 kB")
    del lines[next(i for i, ln in enumerate(lines) if ln.startswith("Swap:"))]
    odd = parse_smaps("\n".join(lines))
    normal = parse_smaps(text)
    assert len(odd) == len(normal)
    assert odd[0].swap_kb == 0 and odd[0].size_kb == normal[0].size_kb
    assert odd[1:] == normal[1:]


def test_fast_and_slow_paths_agree_on_5000_mappings():
    text = fixture("smaps_many.gz")
    lines = text.split("\n")
    assert procfs_maps._parse_smaps_columns(lines) == procfs_maps._parse_smaps_lines(lines)


def test_parse_smaps_5000_mappings_is_fast():
    text = fixture("smaps_many.gz")
    assert text.count("\n") > 100_000
    split = min(_timed(lambda t: t.split("\n"), text) for _ in range(5))
    best = min(_timed(parse_smaps, text) for _ in range(5))
    # Relative to merely splitting the lines, so the check holds on a loaded VM: the parser is
    # ~5x a text.split() here (40-70 ms); a regex- or dict-per-line parser is 15-30x.
    assert best < 10 * split, f"parse_smaps {best * 1e3:.1f} ms vs split {split * 1e3:.1f} ms"
    assert best < 0.250, f"parse_smaps took {best * 1e3:.1f} ms"


def _timed(fn, arg) -> float:
    t0 = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t0


def test_empty_smaps_is_empty():
    assert parse_smaps("") == ()


def test_maps_matches_smaps_addresses():
    maps, smaps = parse_maps(fixture("sleep_maps")), parse_smaps(fixture("sleep_smaps"))
    assert [(m.start, m.end, m.perms, m.path) for m in maps] == [(m.start, m.end, m.perms, m.path) for m in smaps]
    assert [m.size_kb for m in maps] == [m.size_kb for m in smaps]
    assert all(m.rss_kb == 0 for m in maps)


def test_rollup_equals_sum_of_smaps():
    r = parse_smaps_rollup(fixture("sleep_smaps_rollup"))
    assert r.rss_kb == 1844 and r.pss_anon_kb == 112 and r.private_dirty_kb == 112
    assert r.pss_anon_kb + r.pss_file_kb + r.pss_shmem_kb == r.pss_kb


def test_status_normal():
    s = parse_status(fixture("sleep_status"))
    assert s.name == "sleep" and s.state == "S" and s.uid == 0 and s.tracer_pid == 0
    assert s.vm_rss_kb == s.rss_anon_kb + s.rss_file_kb + s.rss_shmem_kb
    assert s.threads == 1 and s.cpus_allowed_list == "0-1"
    assert not s.is_kernel_thread and not s.is_zombie and s.has_mm


def test_status_kernel_thread_and_zombie():
    k = parse_status(fixture("kthread_status"))
    assert k.name == "kthreadd" and k.is_kernel_thread and not k.has_mm and k.vm_rss_kb == 0
    z = parse_status(fixture("zombie_status"))
    assert z.is_zombie and not z.is_kernel_thread and not z.has_mm
    # Without the Kthread line (older kernels), fall back to "no mm and not a zombie".
    old_k = parse_status("\n".join(ln for ln in fixture("kthread_status").splitlines() if not ln.startswith("Kthread")))
    old_z = parse_status("\n".join(ln for ln in fixture("zombie_status").splitlines() if not ln.startswith("Kthread")))
    assert old_k.is_kernel_thread and not old_z.is_kernel_thread


def test_status_rejects_other_text():
    with pytest.raises(ValueError):
        parse_status("Rss: 4 kB\n")


def test_stat_fields():
    s = parse_stat(fixture("sleep_stat"))
    assert s.comm == "sleep" and s.state == "S" and not s.is_kernel_thread
    assert s.num_threads == 1 and s.policy == 0 and s.rss_pages > 0
    assert parse_stat(fixture("kthread_stat")).is_kernel_thread
    assert parse_stat(fixture("zombie_stat")).is_zombie


def test_stat_comm_with_parentheses_and_spaces():
    s = parse_stat(fixture("weird_comm_stat"))
    assert s.comm == "we) ird (na) me"
    assert s.state == "S" and s.ppid == 11326 and s.num_threads == 1 and s.processor == 1


def test_numa_maps_totals():
    nodes = parse_numa_maps(fixture("sleep_numa_maps"))
    assert [n.node for n in nodes] == [0]
    assert nodes[0].pages == sum(int(tok[3:]) for tok in fixture("sleep_numa_maps").split() if tok.startswith("N0="))
    assert nodes[0].kb == nodes[0].pages * 4 and 0 < nodes[0].anon_pages < nodes[0].pages


def test_numa_maps_two_nodes_and_huge_pages():
    text = ("7f0000000000 bind:0-1 anon=10 dirty=10 N0=6 N1=4 kernelpagesize_kB=4\n"
            "7f0100000000 default anon=1 dirty=1 N1=1 kernelpagesize_kB=2048\n")
    n0, n1 = parse_numa_maps(text)
    assert (n0.node, n0.pages, n0.kb, n0.mappings) == (0, 6, 24, 1)
    assert (n1.node, n1.pages, n1.kb, n1.mappings) == (1, 5, 16 + 2048, 2)


def test_mapping_mode_for_all_perm_shapes():
    mk = lambda perms: Mapping(0, 4096, perms, 0, "00:00", 0, "")
    assert [mk(p).mode for p in ("r-xp", "rw-p", "---p", "r--s", "rwxs")] == ["r-x--", "rw---", "-----", "r--s-", "rwxs-"]


# --------------------------------------------------------------------------- names that are not UTF-8

ENGINE = os.fsdecode(b"/opt/caf\xe9/hft-engine")  # latin-1 e-acute: not UTF-8
PLUGIN = os.fsdecode(b"/tmp/plug\xff\xfein dir/lib")


@pytest.fixture
def fake_root(tmp_path):
    """A procfs root whose process 4242 has the non-UTF-8 maps fixture (and no exe link)."""
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "maps").write_bytes((FIX / "non_utf8_maps").read_bytes())
    return str(tmp_path)


def test_maps_path_that_is_not_utf8_round_trips(fake_root):
    maps = procfs.parse_maps(procfs.read_text(4242, "maps", fake_root))
    assert len(maps) == 9
    assert [os.fsencode(m.path) for m in maps[:3]] == [b"/opt/caf\xe9/hft-engine"] * 3
    assert os.fsencode(maps[6].path) == b"/tmp/plug\xff\xfein dir/lib (deleted)"
    assert (maps[0].dev, maps[0].inode, maps[1].offset, maps[1].perms) == ("fd:01", 1835123, 0x2000, "r-xp")
    assert maps[3].kind == "heap" and maps[7].kind == "stack"


def test_exec_mappings_and_load_base_use_the_one_parser(fake_root):
    from hftmem_tui.sources.codemap import read_exec_mappings
    from hftmem_tui.sources.symbols import load_base

    exe = read_exec_mappings(4242, fake_root)
    assert [(m.path, m.offset) for m in exe] == [
        (ENGINE, 0x2000), ("/usr/lib/x86_64-linux-gnu/libc.so.6", 0x28000), (PLUGIN, 0)]
    assert load_base(4242, ENGINE, procfs=fake_root) == 0x55D0C0A00000
    assert load_base(4242, PLUGIN, procfs=fake_root) == 0x7F1C3A900000  # " (deleted)" tolerated
    with pytest.raises(SymbolNotFound, match="is not mapped in process 4242"):
        load_base(4242, "/usr/bin/other", procfs=fake_root)
    with pytest.raises(NoSuchProcess):
        read_exec_mappings(4243, fake_root)


# --------------------------------------------------------------------------- native parser = Python parser

SMAPS_KEYS = ("Size", "KernelPageSize", "MMUPageSize", "Rss", "Pss", "Pss_Dirty", "Shared_Clean", "Shared_Dirty",
              "Private_Clean", "Private_Dirty", "Referenced", "Anonymous", "KSM", "LazyFree", "AnonHugePages",
              "ShmemPmdMapped", "FilePmdMapped", "Shared_Hugetlb", "Private_Hugetlb", "Swap", "SwapPss", "Locked")
# Names the kernel can print: spaces (inside, trailing), bytes that are not UTF-8, " (deleted)",
# the special areas, ':' and '-' inside names, a tab, an escaped newline, non-ASCII UTF-8.
HOSTILE_NAMES = (b"", b"[heap]", b"[stack]", b"[vdso]", b"[vvar]", b"[vsyscall]", b"[anon:order book]",
                 b"/usr/lib/x86_64-linux-gnu/libc.so.6", b"/tmp/with space/file name", b"/tmp/trailing space ",
                 b"/tmp/engine (deleted)", b"/opt/caf\xe9/hft-engine", b"/tmp/plug\xff\xfein dir/lib (deleted)",
                 b"/memfd:shm-1 (deleted)", b"/tmp/a-b:c 0-1 rw-p", b"/dir/", b"/tmp/tab\there", b"/tmp/nl\\012x",
                 b"/tmp/\xc3\xa9t\xc3\xa9/\xe2\x82\xac", b"/SYSV00000000 (deleted)")


def generated_smaps(count: int, seed: int) -> bytes:
    """smaps text laid out exactly as the kernel writes it, ``count`` areas, names from HOSTILE_NAMES."""
    rng = __import__("random").Random(seed)
    out, addr = [], 0x10000
    for _ in range(count):
        pages = rng.choice((1, 1, 2, 3, 16, 512))
        start, addr = addr, addr + pages * 4096
        name = rng.choice(HOSTILE_NAMES)
        perms = rng.choice((b"r--p", b"rw-p", b"r-xp", b"---p", b"rw-s", b"r--s"))
        inode = rng.choice((0, 0, 260875, 1835123, 2**40))
        head = b"%x-%x %s %08x %s %d" % (start, addr, perms, rng.randrange(0, 2**32, 4096),
                                         rng.choice((b"00:00", b"fe:00", b"fd:01", b"103:02")), inode)
        out.append(head.ljust(73) + name if name else head + b" ")
        rss = rng.randrange(pages + 1) * 4
        for key in SMAPS_KEYS:
            kb = pages * 4 if key == "Size" else 4 if key.endswith("PageSize") else rng.choice((0, rss, rss // 2))
            out.append(b"%-16s%8d kB" % (key.encode() + b":", kb))
        out += [b"THPeligible:    0", b"ProtectionKey:  0", b"VmFlags: rd wr mr mw me ac "]
    return b"\n".join(out) + b"\n"


@pytest.fixture(scope="module")
def smaps_100k() -> bytes:
    return generated_smaps(100_000, seed=17)


def test_native_parser_is_built():
    assert procfs_maps.NATIVE, "the native smaps parser is missing: run `pip install -e .` (native/pyext)"


@pytest.mark.parametrize("name", ["sleep_smaps", "smaps_many.gz"])
def test_native_and_python_parsers_agree_on_captured_smaps(name):
    text = fixture(name)
    native = procfs_maps._native_parse(text.encode("utf-8", "surrogateescape"))
    assert native is not None and native == procfs_maps.parse_smaps_python(text)
    assert procfs_maps.parse_smaps(text) == native  # str in, same result


def test_native_and_python_parsers_agree_on_100k_hostile_mappings(smaps_100k):
    native = procfs_maps._native_parse(smaps_100k)
    python = procfs_maps.parse_smaps_python(smaps_100k.decode("utf-8", "surrogateescape"))
    assert native is not None and len(native) == 100_000
    assert native == python
    assert all(type(m) is Mapping for m in native)
    paths = {os.fsencode(m.path) for m in native}
    assert paths == set(HOSTILE_NAMES)  # trailing spaces kept, as Python's split(None, 5) keeps them
    assert {m.kind for m in native} >= {"anon", "heap", "stack", "vdso", "special", "file"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        native[0].rss_kb = 1  # type: ignore[misc]


def test_native_and_python_rows_agree(smaps_100k):
    maps = procfs_maps.parse_smaps(smaps_100k)
    rows = procfs_maps.pmap_rows(maps)
    assert rows == procfs_maps.pmap_rows_python(maps) and rows.count("\n") == len(maps)
    odd = (Mapping(0x1000, 0x2000, "r", 0, "00:00", 0, "/x"), Mapping(0, 4096, "rwxs", 0, "00:00", 0, "/a/é"))
    assert procfs_maps.pmap_rows(odd) == procfs_maps.pmap_rows_python(odd)
    assert procfs_maps.pmap_rows(()) == ""


@pytest.mark.parametrize("edit", [
    lambda t: t.replace(b" kB\n", b" kB\r\n", 1),               # CRLF: not the kernel's layout
    lambda t: t.replace(b"Rss:   ", b"Rss:\t  ", 1),             # a tab before the number
    lambda t: t.replace(b"/usr/bin/sleep", b"\xc2\xa0/sleep", 1),  # a name starting with Unicode space
    lambda t: t.replace(b"Swap:                  0 kB", b"Swap:                  x kB", 1),  # not a number
    lambda t: t.replace(b"r--p 00000000 fe:00", b"r--p 0000000g fe:00", 1),    # offset not hex
])
def test_native_parser_hands_what_it_does_not_know_to_python(edit):
    data = edit((FIX / "sleep_smaps").read_bytes())
    assert procfs_maps._native_parse(data) is None
    text = data.decode("utf-8", "surrogateescape")
    try:
        expected = procfs_maps.parse_smaps_python(text)
    except ValueError:
        with pytest.raises(ValueError):
            parse_smaps(data)
    else:
        assert parse_smaps(data) == expected


def test_native_parser_ignores_unknown_keys_and_keeps_missing_ones_zero():
    text = fixture("sleep_smaps")
    lines = text.split("\n")
    lines.insert(2, "FutureKey:            7 kB")
    del lines[next(i for i, ln in enumerate(lines) if ln.startswith("Swap:"))]
    odd = "\n".join(lines)
    native = procfs_maps._native_parse(odd.encode())
    assert native is not None and native == procfs_maps.parse_smaps_python(odd)
    assert procfs_maps._native_parse(b"") == () == parse_smaps(b"")
