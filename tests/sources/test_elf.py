"""The one ELF reader on real files and on copies of them broken in known ways.

Every broken copy must give a typed error (MalformedElf, a SourceError), never struct.error
or IndexError, and the callers that tolerate bad files (ElfFunctions) must keep going.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys

import pytest

from hftmem_tui.errors import NoDebugInfo, SourceError
from hftmem_tui.sources.codemap import ElfFunctions
from hftmem_tui.sources.elf import (
    SHT_DYNSYM,
    ElfFile,
    MalformedElf,
    read_elf_info,
    symbol_size,
)
from hftmem_tui.sources.symbols import SymbolTable

REAL = shutil.which("true") or "/bin/true"
# ELF64 header fields: e_phoff, e_shoff (Q); e_phentsize, e_phnum, e_shentsize, e_shnum (H).
E_SHOFF, E_PHENTSIZE, E_PHNUM, E_SHENTSIZE, E_SHNUM = 40, 54, 56, 58, 60


@pytest.fixture
def real_elf(tmp_path):
    """A private copy of a real 64-bit ELF executable (its bytes, its path)."""
    path = tmp_path / "true"
    shutil.copyfile(REAL, path)
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2
    return bytearray(data), path


def broken(path, data: bytearray, name: str):
    out = path.with_name(name)
    out.write_bytes(bytes(data))
    return str(out)


def dynsym_header(data: bytes) -> int:
    """File offset of the .dynsym section header."""
    shoff, = struct.unpack_from("<Q", data, E_SHOFF)
    shentsize, shnum = struct.unpack_from("<HH", data, E_SHENTSIZE)
    for i in range(shnum):
        if struct.unpack_from("<I", data, shoff + i * shentsize + 4)[0] == SHT_DYNSYM:
            return shoff + i * shentsize
    pytest.skip(f"{REAL} has no .dynsym")


def test_real_file_reads_like_readelf(real_elf):
    _data, path = real_elf
    info = read_elf_info(str(path))
    with ElfFile(str(path)) as elf:
        names = [s.name for s in elf.sections()]
        assert ".dynsym" in names and ".text" in names
        dynsym = next(s for s in elf.sections() if s.type == SHT_DYNSYM)
        assert any(sym.name for sym in elf.symbols(dynsym, elf.sections()))
    if shutil.which("readelf"):
        notes = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True).stdout
        if "Build ID:" in notes:
            assert info.build_id == notes.split("Build ID:")[1].split()[0]
    assert info.first_load_vaddr % 4096 == 0


@pytest.mark.parametrize("keep", [20, 64, 200, 0.5, 0.9])
def test_truncated_copy_is_malformed(real_elf, keep):
    data, path = real_elf
    size = keep if isinstance(keep, int) else int(len(data) * keep)
    name = broken(path, data[:size], f"cut{size}")
    with pytest.raises(MalformedElf, match="truncated ELF file"):
        read_elf_info(name)
    with pytest.raises(MalformedElf):
        symbol_size(name, 0x1000)
    ElfFunctions(name)  # tolerated: no functions, no exception


def test_too_short_to_be_elf_is_not_an_elf(real_elf):
    data, path = real_elf
    with pytest.raises(NoDebugInfo, match="not an ELF"):
        read_elf_info(broken(path, data[:10], "ten"))


def test_section_table_past_eof(real_elf):
    data, path = real_elf
    struct.pack_into("<Q", data, E_SHOFF, len(data) - 16)
    with pytest.raises(MalformedElf, match="truncated ELF file"):
        read_elf_info(broken(path, data, "shoff"))


@pytest.mark.parametrize("field, value, match", [
    (E_PHNUM, 0xFFFF, "truncated ELF file"),
    (E_SHNUM, 0xFFFF, "truncated ELF file"),
    (E_PHENTSIZE, 1, "program header entries of 1 bytes"),
    (E_SHENTSIZE, 0, "section header entries of 0 bytes"),
])
def test_absurd_counts_and_entry_sizes(real_elf, field, value, match):
    data, path = real_elf
    struct.pack_into("<H", data, field, value)
    name = broken(path, data, f"field{field}")
    with pytest.raises(MalformedElf, match=match):
        read_elf_info(name)
    assert ElfFunctions(name).function_at(0x1000) is None


def test_symbol_table_that_points_outside(real_elf):
    data, path = real_elf
    hdr = dynsym_header(data)
    bad_offset = bytearray(data)
    struct.pack_into("<Q", bad_offset, hdr + 24, len(data) + 4096)  # sh_offset past EOF
    bad_entsize = bytearray(data)
    struct.pack_into("<Q", bad_entsize, hdr + 56, 3)  # sh_entsize smaller than a symbol
    bad_link = bytearray(data)
    struct.pack_into("<I", bad_link, hdr + 40, 999)  # sh_link to no section
    for name, match in ((broken(path, bad_offset, "off"), "truncated"),
                        (broken(path, bad_entsize, "ent"), "symbol entries of 3 bytes"),
                        (broken(path, bad_link, "link"), "links to section 999")):
        with pytest.raises(MalformedElf, match=match):
            symbol_size(name, 0x1000)
        ElfFunctions(name)


def test_symbol_table_refuses_malformed_file_with_one_line(real_elf):
    data, path = real_elf
    name = broken(path, data[:200], "cut")
    with pytest.raises(NoDebugInfo, match=r"unreadable ELF file \(truncated ELF file\)"):
        SymbolTable(name, use_disk_cache=False)


def test_malformed_elf_is_a_source_error_and_a_value_error():
    assert issubclass(MalformedElf, SourceError) and issubclass(MalformedElf, ValueError)
    assert sys.byteorder == "little"  # the reader (and these tests) assume x86-64
