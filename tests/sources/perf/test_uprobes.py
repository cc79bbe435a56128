"""The uprobe mechanism: tracefs lookup, probe groups, the guardian, the leftovers command."""

from __future__ import annotations

import ctypes
import os
import struct
import subprocess
import sys

import pytest

from hftmem_tui.errors import ProbeError, TracefsMissing
from hftmem_tui.sources.codemap import read_exec_mappings
from hftmem_tui.sources.perf import uprobe_guardian
from hftmem_tui.sources.perf.abi import CONTEXT_MAX, read_count
from hftmem_tui.sources.perf.uprobes import (
    UprobeGroup,
    decode_call_sample,
    define_probe,
    find_tracefs,
    is_libc,
    list_session_probes,
    open_counter,
    probe_offset,
)
from tests.conftest import ROOT
from tests.helpers import uprobes_mark

needs_uprobes = uprobes_mark()


def _own_libc_malloc() -> tuple[str, int]:
    libc = next(m.path for m in read_exec_mappings(os.getpid()) if is_libc(m.path))
    off = probe_offset(libc, "malloc")
    assert off is not None
    return libc, off


def _dead_pid() -> int:
    dead = subprocess.Popen(["true"])
    dead.wait()
    return dead.pid


def _uprobes_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hftmem_tui.sources.perf.uprobes", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_tracefs_not_mounted_is_one_clear_line(tmp_path):
    with pytest.raises(TracefsMissing) as e:
        find_tracefs((str(tmp_path / "tracing"), str(tmp_path)))
    assert "\n" not in str(e.value) and "mount -t tracefs nodev /sys/kernel/tracing" in str(e.value)
    (tmp_path / "uprobe_events").write_text("")
    assert find_tracefs((str(tmp_path),)) == str(tmp_path)


def test_libc_names():
    assert is_libc("/usr/lib/x86_64-linux-gnu/libc.so.6") and is_libc("/lib/libc-2.31.so")
    assert not is_libc("/usr/lib/libcrypto.so.3") and not is_libc("/usr/bin/calc")


def test_call_sample_decoding_adds_the_direct_caller():
    """ip, tid, a frame-pointer chain missing the caller, one register (sp), the 8 stack bytes."""
    chain = (CONTEXT_MAX + 5, 0x401000, 0x402000)  # a context marker, the probed function, its caller's caller
    payload = (struct.pack("<QIIQQ", 0x401000, 7, 8, 123, len(chain)) + struct.pack(f"<{len(chain)}Q", *chain)
               + struct.pack("<QQ", 2, 0x7FFF0000) + struct.pack("<QQ", 8, 0x401500))
    assert decode_call_sample(payload) == (0x401000, 8, [0x401000, 0x401500, 0x402000])


def test_help_says_what_it_does_and_touches_nothing():
    r = _uprobes_cli("--help")
    assert r.returncode == 0 and "--cleanup" in r.stdout and "usage:" in r.stdout
    r = _uprobes_cli("--bogus")
    assert r.returncode == 2 and "unrecognized arguments" in r.stderr


@needs_uprobes
def test_cleanup_removes_dead_sessions_and_lists_live_ones():
    libc, off = _own_libc_malloc()
    stale = f"hftmem_{_dead_pid()}"
    define_probe(find_tracefs(), stale, "malloc", libc, off)
    with UprobeGroup(guardian=False) as live:
        live.define("malloc", libc, off)
        r = _uprobes_cli("--cleanup")
        assert r.returncode == 0, r.stderr
        assert f"removed {stale}" in r.stdout and f"p:{live.group}/malloc " in r.stdout
        assert not list_session_probes(group=stale) and list_session_probes(group=live.group)
    assert not list_session_probes(group=live.group)
    assert _uprobes_cli().stdout == _uprobes_cli("--list").stdout


@needs_uprobes
def test_a_defined_probe_counts_our_own_calls_and_goes_with_its_group():
    libc, off = _own_libc_malloc()
    with UprobeGroup(guardian=False) as group:
        eid = group.define("malloc", libc, off)
        assert group.define("malloc", libc, off) == eid  # defined once, the same tracepoint
        c = ctypes.CDLL(libc)
        c.malloc.restype, c.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
        fd = open_counter(eid, 0)
        try:
            for _ in range(100):
                c.free(c.malloc(16))
            assert read_count(fd) >= 100
        finally:
            os.close(fd)
    assert not list_session_probes(group=group.group)
    with pytest.raises(ProbeError):
        group.define("malloc", libc, off)  # closed


@needs_uprobes
def test_guardian_removes_the_group_at_eof_even_with_no_session():
    libc, off = _own_libc_malloc()
    group = f"hftmem_{_dead_pid()}"
    define_probe(find_tracefs(), group, "malloc", libc, off)
    define_probe(find_tracefs(), group, "free", libc, probe_offset(libc, "free"))
    assert len(list_session_probes(group=group)) == 2
    r = subprocess.run([sys.executable, "-I", uprobe_guardian.__file__, group,
                        os.path.join(find_tracefs(), "uprobe_events")], stdin=subprocess.DEVNULL, timeout=30)
    assert r.returncode == 0 and not list_session_probes(group=group)


def test_guardian_reads_only_its_group():
    text = "p:hftmem_1/malloc /lib/libc.so.6:0x1\np:hftmem_12/free /lib/libc.so.6:0x2\np:other/malloc /x:0x3\n"
    assert uprobe_guardian.group_events(text, "hftmem_1") == ["hftmem_1/malloc"]
