"""format_x() against gdb's own x/ output, and read_memory() on this very process.

The expected lines were printed by gdb 13 (`gdb -batch -ex 'x/...' ./prog`, no process)
for the same bytes; the integration suite re-checks against a live gdb run.
"""

from __future__ import annotations

import ctypes
import mmap
import os

import pytest

from hftmem_tui.errors import NoSuchProcess, UnmappedAddress
from hftmem_tui.sources import memory
from hftmem_tui.sources.memory import format_x, read_memory

# The first 20 bytes of `Stats g_stats = {"HFTMEM01", 1, 0, ...}` at link address 0x4080.
STATS = b"HFTMEM01" + (1).to_bytes(8, "little") + bytes(4)
SYM = ("g_stats", 0x4080)


class TestFormatX:
    def test_xb_like_gdb(self):
        assert format_x(STATS, 0x4080, "xb", symbol=SYM) == [
            "0x4080 <g_stats>:\t0x48\t0x46\t0x54\t0x4d\t0x45\t0x4d\t0x30\t0x31",
            "0x4088 <g_stats+8>:\t0x01\t0x00\t0x00\t0x00\t0x00\t0x00\t0x00\t0x00",
            "0x4090 <g_stats+16>:\t0x00\t0x00\t0x00\t0x00",
        ]

    def test_xw_like_gdb(self):
        assert format_x(STATS, 0x4080, "xw", symbol=SYM) == [
            "0x4080 <g_stats>:\t0x4d544648\t0x31304d45\t0x00000001\t0x00000000",
            "0x4090 <g_stats+16>:\t0x00000000",
        ]

    def test_xg_like_gdb(self):
        assert format_x(STATS[:16] + bytes(8), 0x4080, "xg", symbol=SYM) == [
            "0x4080 <g_stats>:\t0x31304d454d544648\t0x0000000000000001",
            "0x4090 <g_stats+16>:\t0x0000000000000000",
        ]

    def test_no_label_and_runtime_address(self):
        lines = format_x(bytes(range(8)), 0x55D0C0A01040, "xb")
        assert lines == ["0x55d0c0a01040:\t0x00\t0x01\t0x02\t0x03\t0x04\t0x05\t0x06\t0x07"]

    def test_s_like_gdb(self):
        assert format_x(STATS[:11] + b"\0", 0x4080, "s", symbol=SYM) == [
            '0x4080 <g_stats>:\t"HFTMEM01\\001"',
            '0x408a <g_stats+10>:\t""',
            '0x408b <g_stats+11>:\t""',
        ]

    def test_s_repeats_escapes_and_limit(self):
        """gdb collapses runs > 10, escapes quotes/controls in octal, cuts at 200 chars."""
        rep = b"ab" + b"A" * 24 + b'cd"q\\\n\t\x1b\x7f\xc3\xa9z\0'
        assert format_x(rep, 0x4020, "s", symbol=("g_rep", 0x4020)) == [
            "0x4020 <g_rep>:\t\"ab\", 'A' <repeats 24 times>, \"cd\\\"q\\\\\\n\\t\\033\\177\\303\\251z\""
        ]
        assert format_x(b"x" + b"A" * 10 + b"y\0", 0, "s") == ['0x0:\t"xAAAAAAAAAAy"']
        assert format_x(b"B" * 20 + b"\0", 0, "s") == ["0x0:\t'B' <repeats 20 times>"]
        digits = (b"0123456789" * 25)[:250] + b"\0"
        lines = format_x(digits, 0x4060, "s", symbol=("g_long", 0x4060))
        assert lines[0].endswith('789"...') and lines[0].count("0123456789") == 20
        assert lines[1].startswith("0x4128 <g_long+200>:\t\"0123")

    def test_ascii_column(self):
        line = format_x(STATS[:16], 0x4080, "xw", ascii=True)[0]
        assert line.endswith("\t|HFTMEM01........|")

    def test_unknown_format(self):
        with pytest.raises(ValueError, match="unknown format"):
            format_x(b"", 0, "xq")


@pytest.fixture()
def guarded_pages():
    """Two pages: the first readable, the second unmapped (munmap'ed)."""
    page = mmap.PAGESIZE
    buf = mmap.mmap(-1, 2 * page)
    buf[:page] = bytes([0xA5]) * page
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    # Not PROT_NONE: /proc/PID/mem reads with FOLL_FORCE and would see through it.
    assert libc.munmap(ctypes.c_void_p(base + page), page) == 0
    yield base, page


class TestReadOwnProcess:
    def test_reads_a_buffer(self):
        data = ctypes.create_string_buffer(b"zero-stop read\0", 32)
        got = read_memory(os.getpid(), ctypes.addressof(data), 14)
        assert got == b"zero-stop read"

    def test_partial_read_names_first_unreadable(self, guarded_pages):
        base, page = guarded_pages
        assert read_memory(os.getpid(), base, page) == bytes([0xA5]) * page
        with pytest.raises(UnmappedAddress) as info:
            read_memory(os.getpid(), base + page - 16, 64)
        assert info.value.first_unreadable == base + page
        assert f"0x{base + page:x}" in str(info.value)

    def test_proc_mem_fallback(self, guarded_pages):
        base, page = guarded_pages
        assert memory._read_proc_mem(os.getpid(), base, 64) == bytes([0xA5]) * 64
        with pytest.raises(UnmappedAddress) as info:
            memory._read_proc_mem(os.getpid(), base + page - 8, 16)
        assert info.value.first_unreadable == base + page

    def test_proc_mem_fallback_uses_the_procfs_root(self, guarded_pages, tmp_path):
        base, _page = guarded_pages
        with pytest.raises(NoSuchProcess):  # no <root>/PID/mem: that process does not exist there
            memory._read_proc_mem(os.getpid(), base, 64, procfs=str(tmp_path))
        assert read_memory(os.getpid(), base, 8, procfs=str(tmp_path)) == bytes([0xA5]) * 8  # vm_readv

    def test_low_address_and_dead_pid(self):
        with pytest.raises(UnmappedAddress):
            read_memory(os.getpid(), 0x10, 8)
        with pytest.raises(NoSuchProcess):
            read_memory(2**22 + 12345, 0x1000, 8)  # above pid_max: never a live pid

    def test_zero_and_negative(self):
        assert read_memory(os.getpid(), 0x10, 0) == b""
        with pytest.raises(ValueError):
            read_memory(os.getpid(), 0x10, -1)


@pytest.fixture(scope="module")
def pattern():
    """A 4 MiB + 2 pages buffer of this process with a known byte pattern, and its address."""
    size = (4 << 20) + 2 * mmap.PAGESIZE
    buf = mmap.mmap(-1, size)
    buf[:] = bytes(range(251)) * (size // 251) + bytes(range(size % 251))  # 251: prime, so no page repeats
    yield buf, ctypes.addressof(ctypes.c_char.from_buffer(buf))


SIZES = [1, 2, 7, 4095, 4096, 4097, 65536 + 3, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20, 4 << 20]


class TestReadSizes:
    @pytest.mark.parametrize("size", SIZES)
    @pytest.mark.parametrize("start", [0, 1, mmap.PAGESIZE - 3])  # aligned, odd, straddling a page
    def test_read_memory_and_read_into_equal_the_bytes(self, pattern, size, start):
        buf, base = pattern
        want = buf[start:start + size]
        got = read_memory(os.getpid(), base + start, size)
        assert type(got) is bytes and got == want
        into = bytearray(size)
        assert memory.read_into(os.getpid(), base + start, into) == size and into == want
        view = memoryview(bytearray(size + 8))[4:4 + size]  # a slice: the read lands at its offset
        assert memory.read_into(os.getpid(), base + start, view) == size and view.tobytes() == want
        assert view.obj[:4] == bytes(4) and view.obj[-4:] == bytes(4)

    def test_repeated_reads_return_distinct_objects(self, pattern):
        buf, base = pattern
        a = read_memory(os.getpid(), base, 1)
        b = read_memory(os.getpid(), base + 1, 1)
        assert (a, b) == (b"\x00", b"\x01") and a is not b
        assert b"\x00" == bytes([0]) and b"\x01"[0] == 1  # the interpreter's shared 1-byte objects untouched

    @pytest.mark.parametrize("size", [16, 4096, (1 << 20) + 5, 3 << 20])
    def test_partly_unmapped_range_names_the_first_bad_page(self, size):
        page = mmap.PAGESIZE
        length = (size // page + 2) * page
        region = mmap.mmap(-1, length)
        base = ctypes.addressof(ctypes.c_char.from_buffer(region))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        hole = base + length - page  # the last page goes: a read across it fails there
        assert libc.munmap(ctypes.c_void_p(hole), page) == 0
        start = hole - size + 8
        for read in (lambda: read_memory(os.getpid(), start, size),
                     lambda: memory.read_into(os.getpid(), start, bytearray(size))):
            with pytest.raises(UnmappedAddress) as info:
                read()
            assert info.value.first_unreadable == hole
        assert read_memory(os.getpid(), start, size - 8) == bytes(size - 8)  # up to the hole: fine

    def test_read_into_rejects_a_read_only_buffer_and_reads_nothing_for_empty(self, pattern):
        _buf, base = pattern
        with pytest.raises(TypeError):
            memory.read_into(os.getpid(), base, b"immutable")
        assert memory.read_into(os.getpid(), base, bytearray()) == 0
        ba = bytearray(8)
        memory.read_into(os.getpid(), base, ba)
        ba.extend(b"x")  # the buffer is released after the read: it can grow again


# Bytes for x/s: non-ASCII (UTF-8 and not), escapes, quotes, repeats of an escaped byte.
GDB_STRINGS = [b"\xd0\x89\xf6r\x94U", "caf\u00e9 \u20ac \u202e".encode(), b"tab\tnl\nesc\x1b del\x7f \x01\x02",
               b'q"uote\' back\\slash', b"\xff" * 12 + b"ab", b"x" + b"\x80" * 11, bytes(range(1, 128)),
               bytes(range(128, 256))]


def test_s_matches_gdb_x_s_on_the_same_bytes(tmp_path):
    """The oracle: gdb's own `x/s` (C locale, as in services and CI) on an executable's data holding
    these bytes; format_x must print every line exactly as gdb does (non-ASCII as octal escapes)."""
    import random
    import shutil
    import subprocess

    if not (shutil.which("gdb") and shutil.which("cc")):
        pytest.skip("needs gdb and a C compiler")
    rng = random.Random(15)
    cases = GDB_STRINGS + [bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 150))) for _ in range(12)]
    src = "".join(f"char g_s{i}[] = {{{', '.join(str(b) for b in c)}, 0}};\n" for i, c in enumerate(cases))
    (tmp_path / "s.c").write_text(src + "int main(void) { return g_s0[0]; }\n")
    subprocess.run(["cc", "-g", "-O0", "-o", str(tmp_path / "s"), str(tmp_path / "s.c")], check=True)
    cmds = [a for i in range(len(cases)) for a in ("-ex", f"x/s g_s{i}")]
    r = subprocess.run(["gdb", "-nx", "-batch", *cmds, str(tmp_path / "s")], capture_output=True, text=True,
                       env={**os.environ, "LC_ALL": "C"}, timeout=60)
    got = r.stdout.splitlines()
    assert len(got) == len(cases), r.stdout + r.stderr
    for i, (case, line) in enumerate(zip(cases, got)):
        address = int(line.split()[0], 16)
        assert format_x(case + b"\0", address, "s", symbol=(f"g_s{i}", address)) == [line], case
