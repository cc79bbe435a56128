"""The one ELF reader: headers, segments, sections, notes and symbol tables of an ELF *file*.

Used by :mod:`~hftmem_tui.sources.symbols` (build-id, PIE or not, symbol sizes) and
:mod:`~hftmem_tui.sources.codemap` (functions and PT_LOAD segments). Little-endian ELF32 and
ELF64 only (x86-64 targets). Every number taken from the file is checked before it is used:
each read must lie inside the file, table entries must be at least as large as the entry
they hold, and a count can never make us read past the end. A malformed file raises
:class:`MalformedElf` (a SourceError, and a ValueError for callers that catch that), never
``struct.error`` or ``IndexError``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from hftmem_tui.errors import NoDebugInfo, SourceError

__all__ = [
    "MalformedElf", "ElfHeader", "Segment", "Section", "ElfSymbol", "ElfFile", "ElfInfo",
    "read_elf_info", "symbol_size", "build_id_of_notes",
    "PT_LOAD", "PT_NOTE", "SHT_SYMTAB", "SHT_NOTE", "SHT_DYNSYM", "ET_DYN", "STT_OBJECT",
]

ET_DYN = 3
PT_LOAD, PT_NOTE = 1, 4
SHT_SYMTAB, SHT_NOTE, SHT_DYNSYM = 2, 7, 11
STT_OBJECT = 1
NT_GNU_BUILD_ID = 3

# (format, size) of each table entry, per class; the file's own entry size may be larger.
_PHDR = {True: struct.Struct("<IIQQQQQQ"), False: struct.Struct("<IIIIIIII")}
_SHDR = {True: struct.Struct("<IIQQQQIIQQ"), False: struct.Struct("<IIIIIIIIII")}
_SYM = {True: struct.Struct("<IBBHQQ"), False: struct.Struct("<IIIBBH")}
_EHDR = {True: struct.Struct("<HHIQQQIHHHHHH"), False: struct.Struct("<HHIIIIIHHHHHH")}
_NOTE = struct.Struct("<III")


class MalformedElf(SourceError, ValueError):
    """An ELF file whose headers or tables point outside it or contradict themselves."""


@dataclass(frozen=True, slots=True)
class ElfHeader:
    """The fields of the ELF header we use."""

    is64: bool
    type: int  # e_type: 2 ET_EXEC, 3 ET_DYN (PIE or shared object)
    phoff: int
    phnum: int
    phentsize: int
    shoff: int
    shnum: int
    shentsize: int
    shstrndx: int


@dataclass(frozen=True, slots=True)
class Segment:
    """One program header."""

    type: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int


@dataclass(frozen=True, slots=True)
class Section:
    """One section header, with its name ("" when the file has no section-name table)."""

    name: str
    type: int
    offset: int
    size: int
    link: int
    entsize: int


@dataclass(frozen=True, slots=True)
class ElfSymbol:
    """One entry of .symtab or .dynsym."""

    name: str
    value: int
    size: int
    info: int
    shndx: int

    @property
    def kind(self) -> int:
        """STT_* (the low nibble of st_info): 1 object, 2 function, 10 GNU ifunc."""
        return self.info & 0xF


class ElfFile:
    """An ELF file opened for checked reads; use as a context manager (``with ElfFile(p) as elf``).

    Raises OSError from open (FileNotFoundError, PermissionError...), NoDebugInfo when the
    file is not a little-endian ELF, MalformedElf when its header is truncated or inconsistent.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close() / __exit__
        try:
            self.file_size = os.fstat(self._f.fileno()).st_size
            self.header = self._read_header()
        except BaseException:
            self._f.close()
            raise

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ElfFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset``; raises MalformedElf if any of them lies outside the file."""
        if offset < 0 or size < 0 or offset + size > self.file_size:
            raise MalformedElf("truncated ELF file")
        self._f.seek(offset)
        data = self._f.read(size)
        if len(data) != size:  # the file shrank while we read it
            raise MalformedElf("truncated ELF file")
        return data

    def _read_header(self) -> ElfHeader:
        ident = self._f.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            raise NoDebugInfo(f"{self.path}: not an ELF executable")
        is64 = ident[4] == 2
        if ident[5] != 1:
            raise NoDebugInfo(f"{self.path}: big-endian ELF is not supported")
        fmt = _EHDR[is64]
        (e_type, _m, _v, _entry, phoff, shoff, _fl, _eh, phentsize, phnum, shentsize, shnum,
         shstrndx) = fmt.unpack(self.read(16, fmt.size))
        hdr = ElfHeader(is64, e_type, phoff, phnum, phentsize, shoff, shnum, shentsize, shstrndx)
        self._check_table("program header", phoff, phnum, phentsize, _PHDR[is64].size)
        self._check_table("section header", shoff, shnum, shentsize, _SHDR[is64].size)
        return hdr

    def _check_table(self, what: str, offset: int, count: int, entsize: int, need: int) -> None:
        """A table of ``count`` entries must hold whole entries and end inside the file
        (checked before any entry is read: a count cannot make us read past the end)."""
        if not count:
            return
        if entsize < need:
            raise MalformedElf(f"{what} entries of {entsize} bytes (at least {need} expected)")
        if offset + count * entsize > self.file_size:  # the message users have always seen
            raise MalformedElf("truncated ELF file")

    def segments(self) -> tuple[Segment, ...]:
        """Every program header, in file order. Raises MalformedElf."""
        hdr, fmt = self.header, _PHDR[self.header.is64]
        out = []
        for i in range(hdr.phnum):
            raw = self.read(hdr.phoff + i * hdr.phentsize, fmt.size)
            if hdr.is64:
                ptype, _fl, off, vaddr, _pa, filesz, memsz, align = fmt.unpack(raw)
            else:
                ptype, off, vaddr, _pa, filesz, memsz, _fl, align = fmt.unpack(raw)
            out.append(Segment(ptype, off, vaddr, filesz, memsz, align))
        return tuple(out)

    def sections(self) -> tuple[Section, ...]:
        """Every section header with its name (names "" without a valid e_shstrndx). Raises MalformedElf."""
        hdr, fmt = self.header, _SHDR[self.header.is64]
        raw_secs = []
        for i in range(hdr.shnum):
            name, stype, _fl, _addr, off, size, link, _info, _al, entsize = fmt.unpack(
                self.read(hdr.shoff + i * hdr.shentsize, fmt.size))
            raw_secs.append((name, stype, off, size, link, entsize))
        names = b""
        if raw_secs and hdr.shstrndx < len(raw_secs):
            _n, _t, off, size, _l, _e = raw_secs[hdr.shstrndx]
            names = self.read(off, size)
        return tuple(Section(_string(names, n) if names else "", t, off, size, link, ent)
                     for n, t, off, size, link, ent in raw_secs)

    def symbols(self, table: Section, sections: tuple[Section, ...]) -> Iterator[ElfSymbol]:
        """The entries of a SHT_SYMTAB/SHT_DYNSYM section (names from its linked string table).

        Raises MalformedElf (entries smaller than a symbol, string table missing or past EOF).
        """
        fmt = _SYM[self.header.is64]
        if table.entsize < fmt.size:
            raise MalformedElf(f"symbol entries of {table.entsize} bytes (at least {fmt.size} expected)")
        if table.link >= len(sections):
            raise MalformedElf(f"symbol table links to section {table.link} of {len(sections)}")
        strtab = self.read(sections[table.link].offset, sections[table.link].size)
        data = self.read(table.offset, table.size)
        is64 = self.header.is64
        for pos in range(0, table.size - table.entsize + 1, table.entsize):
            if is64:
                name_i, info, _o, shndx, value, size = fmt.unpack_from(data, pos)
            else:
                name_i, value, size, info, _o, shndx = fmt.unpack_from(data, pos)
            yield ElfSymbol(_string(strtab, name_i), value, size, info, shndx)


def _string(table: bytes, offset: int) -> str:
    """The NUL-terminated string at ``offset`` of a string table (latin-1: any bytes survive)."""
    if offset >= len(table) and offset:
        raise MalformedElf(f"string offset {offset} past its table ({len(table)} bytes)")
    end = table.find(b"\0", offset)
    return table[offset:end if end >= 0 else len(table)].decode("latin-1")


def build_id_of_notes(data: bytes) -> str | None:
    """The GNU build-id (hex) in the bytes of a note segment or section, or None."""
    pos = 0
    while pos + _NOTE.size <= len(data):
        namesz, descsz, ntype = _NOTE.unpack_from(data, pos)
        pos += _NOTE.size
        name = data[pos:pos + namesz]
        pos += (namesz + 3) & ~3
        desc = data[pos:pos + descsz]
        pos += (descsz + 3) & ~3
        if ntype == NT_GNU_BUILD_ID and name.rstrip(b"\0") == b"GNU":
            return desc.hex()
    return None


@dataclass(frozen=True)
class ElfInfo:
    path: str
    is_pie: bool  # e_type == ET_DYN: link addresses are relative to the load base
    build_id: str | None
    first_load_vaddr: int  # page-aligned vaddr of the lowest PT_LOAD
    has_symtab: bool = False  # .symtab present (not stripped)
    has_debug_info: bool = False  # .debug_info present (built with -g)


def read_elf_info(path: str) -> ElfInfo:
    """e_type, build-id (.note.gnu.build-id) and first PT_LOAD of an ELF file.

    Raises FileNotFoundError/PermissionError from open, NoDebugInfo when the file is not
    an ELF we can read, MalformedElf when its tables point outside it.
    """
    with ElfFile(path) as elf:
        build_id = None
        first_load = None
        for seg in elf.segments():
            if seg.type == PT_LOAD and first_load is None:  # sorted by vaddr
                first_load = seg.vaddr & ~(max(seg.align, 4096) - 1) if seg.align else seg.vaddr
            elif seg.type == PT_NOTE and build_id is None:
                build_id = build_id_of_notes(elf.read(seg.offset, seg.filesz))
        secs = elf.sections()
        if build_id is None:
            for sec in secs:
                if sec.type == SHT_NOTE:
                    build_id = build_id_of_notes(elf.read(sec.offset, sec.size))
                    if build_id:
                        break
        names = {sec.name for sec in secs}
        has_symtab = any(sec.type == SHT_SYMTAB for sec in secs)
        return ElfInfo(path, elf.header.type == ET_DYN, build_id, first_load or 0, has_symtab,
                       ".debug_info" in names)


def symbol_size(path: str, address: int) -> int | None:
    """Size of the data symbol at ``address`` from .symtab/.dynsym (``nm -S``), or None.

    Raises OSError from open, NoDebugInfo (not an ELF), MalformedElf.
    """
    with ElfFile(path) as elf:
        secs = elf.sections()
        best = None
        for sec in secs:
            if sec.type not in (SHT_SYMTAB, SHT_DYNSYM) or not sec.entsize:
                continue
            for sym in elf.symbols(sec, secs):
                if sym.value == address and sym.size:
                    if sym.kind == STT_OBJECT:  # an object wins over anything else at that address
                        return sym.size
                    best = best or sym.size
        return best
