"""Addresses, sizes, types and field layouts of globals, WITHOUT ptrace.

Everything here comes from the executable *file*: gdb runs on it (never on the process,
see ``gdbmi``), and a tiny ELF reader gives the build-id, ``e_type`` (PIE or not) and
symbol sizes. The only thing taken from the running process is its load base, read from
``/proc/PID/maps``. Results are cached in memory and on disk
(``$XDG_CACHE_HOME/hftmem/symbols/<build-id>.json``) so a second run starts no gdb.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hftmem_tui.sources.paths import cache_root
from hftmem_tui.errors import (
    AccessDenied,
    NoDebugInfo,
    NoSuchProcess,
    SourceError,
    SymbolNotFound,
)
from hftmem_tui.sources.gdb.file_session import FileGdbSession, GdbCommandError

__all__ = [
    "CACHE_VERSION",
    "InvalidExpression",
    "Field",
    "Layout",
    "Symbol",
    "ResolvedExpr",
    "ElfInfo",
    "SymbolTable",
    "check_symbol_expr",
    "parse_ptype_o",
    "read_elf_info",
    "load_base",
    "exe_path_of",
]

CACHE_VERSION = 2  # 2: cached error messages name the file as {exe}


class InvalidExpression(SourceError, ValueError):
    """A user-typed symbol expression uses something other than names, '.', '::', '[N]'."""


# ------------------------------------------------------------------ data


@dataclass(frozen=True)
class Symbol:
    """A global as linked: ``address`` is the link-time address (add the load base for PIE)."""

    name: str
    address: int
    size: int
    type_name: str | None  # None: no debug info, only the ELF symbol table knows it

    @property
    def has_debug_info(self) -> bool:
        return self.type_name is not None


@dataclass(frozen=True)
class Field:
    """One member of a layout; nested members have dotted paths (``last.in.c``)."""

    path: str
    offset: int  # bytes from the start of the layout
    size: int  # bytes (for a bitfield: its storage unit as gdb reports it)
    type_name: str  # as declared, with array dims: "char [8]", "uint64_t [64]"
    elem_type: str  # type without array dims: "char", "uint64_t"
    dims: tuple[int, ...] = ()  # array dimensions, () for a scalar/struct
    bit_offset: int | None = None  # bit position within the byte at ``offset``
    bit_size: int | None = None
    is_struct: bool = False  # a struct/union/class whose members follow, flattened

    @property
    def count(self) -> int:
        """Number of elements (1 for a non-array)."""
        n = 1
        for d in self.dims:
            n *= d
        return n

    @property
    def elem_size(self) -> int:
        return self.size // self.count if self.count else 0

    @property
    def is_bitfield(self) -> bool:
        return self.bit_size is not None

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Layout:
    """A type's members, flattened, in declaration order."""

    type_name: str
    size: int
    fields: tuple[Field, ...] = ()

    def field(self, path: str) -> Field:
        """The member at ``path``; raises SymbolNotFound."""
        for f in self.fields:
            if f.path == path:
                return f
        raise SymbolNotFound(f"no field '{path}' in {self.type_name}")

    def get(self, path: str) -> Field | None:
        for f in self.fields:
            if f.path == path:
                return f
        return None

    def to_json(self) -> dict:
        return {"type_name": self.type_name, "size": self.size, "fields": [asdict(f) for f in self.fields]}

    @classmethod
    def from_json(cls, d: dict) -> Layout:
        fields = tuple(Field(**{**f, "dims": tuple(f["dims"])}) for f in d["fields"])
        return cls(d["type_name"], d["size"], fields)


@dataclass(frozen=True)
class ResolvedExpr:
    """Where ``expr`` lives: link-time ``address`` (see SymbolTable.runtime_address)."""

    expr: str
    address: int
    size: int
    type_name: str | None
    symbol: Symbol = field(compare=False)
    offset: int = 0  # bytes from the symbol's start
    member: Field | None = field(default=None, compare=False)  # the last field named, if any


# ------------------------------------------------------------------ expression guard

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_BASE_RE = re.compile(rf"(?:::)?{_IDENT}(?:::{_IDENT})*")
_STEP_RE = re.compile(rf"\.({_IDENT})|\[\s*(0[xX][0-9a-fA-F]+|\d+)\s*\]")
_MAX_EXPR = 512

_REFUSALS = [
    (re.compile(r"\+\+|--"), "increments and decrements are not allowed"),
    (re.compile(r"(?<![=!<>])=(?!=)|[-+*/%&|^]=|<<=|>>="), "assignments are not allowed (read-only)"),
    (re.compile(r"\$"), "registers and gdb convenience variables ($...) are not allowed"),
    (re.compile(r"\("), "function calls and casts are not allowed"),
    (re.compile(r"->|\*|&"), "pointer dereference and address-of are not supported; dump the pointer's target by address"),
    (re.compile(r"[;,'\"`{}\\]"), "only a symbol name, '::', '.field' and '[N]' are allowed"),
]


def check_symbol_expr(text: str) -> tuple[str, tuple[tuple[str, str | int], ...]]:
    """Accept ``name``, ``ns::name``, ``name.field.sub``, ``name.arr[3]`` and nothing else.

    Returns ``(base_symbol, steps)`` with steps ``("field", name)`` / ``("index", n)``.
    Raises InvalidExpression with a one-line reason (calls, assignments, ``$``...).
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidExpression("empty symbol expression")
    if len(text) > _MAX_EXPR:
        raise InvalidExpression(f"symbol expression longer than {_MAX_EXPR} characters")
    s = text.strip()
    for pattern, reason in _REFUSALS:
        if pattern.search(s):
            raise InvalidExpression(f"refused expression {s!r}: {reason}")
    m = _BASE_RE.match(s)
    if not m:
        raise InvalidExpression(f"refused expression {s!r}: it must start with a symbol name")
    base = m.group(0)
    pos = m.end()
    steps: list[tuple[str, str | int]] = []
    while pos < len(s):
        step = _STEP_RE.match(s, pos)
        if not step:
            raise InvalidExpression(
                f"refused expression {s!r} at {s[pos:pos + 10]!r}: only a symbol name, '::', '.field' and '[N]' are allowed"
            )
        if step.group(1) is not None:
            steps.append(("field", step.group(1)))
        else:
            steps.append(("index", int(step.group(2), 0)))
        pos = step.end()
    return base, tuple(steps)


# ------------------------------------------------------------------ ptype/o parser

_MEMBER_RE = re.compile(r"^/\*\s*(\d+)(?::\s*(\d+))?\s*\|\s*(\d+)\s*\*/\s?(.*)$")
_UNION_MEMBER_RE = re.compile(r"^/\*\s+(\d+)\s*\*/\s?(.*)$")
# gdb omits the offset/size banner for some classes (templates that open with an access label).
_HEADER_RE = re.compile(r"^(?:/\*\s*offset\s*\|\s*size\s*\*/\s*)?type\s*=\s*(.*\{)\s*$")
_TOTAL_RE = re.compile(r"/\*\s*total size \(bytes\):\s*(\d+)\s*\*/")
_CLOSE_RE = re.compile(r"^\}\s*(.*?);?\s*$")
_DIMS_RE = re.compile(r"((?:\[\d+\])+)\s*$")
_FNPTR_RE = re.compile(rf"\(\s*\*\s*(?:const\s+)?({_IDENT})\s*\)")


def _split_dims(text: str) -> tuple[str, tuple[int, ...]]:
    m = _DIMS_RE.search(text)
    if not m:
        return text.strip(), ()
    return text[: m.start()].strip(), tuple(int(d) for d in re.findall(r"\[(\d+)\]", m.group(1)))


def _parse_decl(decl: str) -> tuple[str, str, tuple[int, ...], int | None]:
    """``uint64_t hist[64];`` -> (elem type, name, dims, bit size)."""
    decl = decl.strip().rstrip(";").strip()
    bits = None
    bm = re.search(r"\s:\s*(\d+)$", decl)
    if bm:
        bits = int(bm.group(1))
        decl = decl[: bm.start()].strip()
    fn = _FNPTR_RE.search(decl)
    if fn:  # function pointer: void (*fn)(int)
        return decl[: fn.start(1)] + decl[fn.end(1):], fn.group(1), (), bits
    decl, dims = _split_dims(decl)
    nm = re.search(rf"({_IDENT})$", decl)
    if not nm:
        return decl, "", dims, bits
    elem = decl[: nm.start()].strip()
    return elem or decl, nm.group(1), dims, bits


def _clean_struct_type(header: str) -> str:
    """``struct std::atomic<unsigned long> [with _Tp = ...] : public B {`` -> ``struct std::atomic<unsigned long>``."""
    t = header.rstrip().rstrip("{").strip()
    t = re.sub(r"\s*\[with [^\]]*\]", "", t)
    depth = 0
    for i, ch in enumerate(t):  # cut the base-class list at a top-level ':' (not '::')
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == ":" and depth == 0 and t[i - 1 : i] != ":" and t[i + 1 : i + 2] != ":":
            return t[:i].strip()
    return t


def _type_with_dims(elem: str, dims: tuple[int, ...]) -> str:
    return elem + (" " + "".join(f"[{d}]" for d in dims) if dims else "")


def parse_ptype_o(text: str) -> Layout | None:
    """Parse gdb's ``ptype/o`` output into a flattened Layout.

    Returns None when the output is not a struct/union/class layout (a scalar or an
    array type: ``type = unsigned long [16]``). Pure: no gdb here.
    """
    lines = text.splitlines()
    root_type = None
    start = 0
    for i, line in enumerate(lines):
        hm = _HEADER_RE.match(line.strip())
        if hm:
            root_type = _clean_struct_type(hm.group(1))
            start = i + 1
            break
    if root_type is None:
        return None

    # Frame: (type, offset, size, fields collected with paths relative to the frame)
    stack: list[dict] = [{"type": root_type, "offset": 0, "size": None, "fields": [], "union": root_type.startswith("union")}]
    total_size: int | None = None
    for raw in lines[start:]:
        line = raw.strip()
        if not line:
            continue
        frame = stack[-1]
        m = _MEMBER_RE.match(line)
        um = None if m else _UNION_MEMBER_RE.match(line)
        if m or um:
            if m:
                off, bit, size, decl = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
            else:  # a union member: gdb prints no offset, it is the union's
                off, bit, size, decl = frame["offset"], None, int(um.group(1)), um.group(2)
            if decl.rstrip().endswith("{"):
                stack.append({
                    "type": _clean_struct_type(decl), "offset": off, "size": size, "fields": [],
                    "union": decl.lstrip().startswith("union"),
                })  # fmt: skip
                continue
            elem, name, dims, bits = _parse_decl(decl)
            if not name:
                continue
            frame["fields"].append(Field(
                path=name, offset=off, size=size, type_name=_type_with_dims(elem, dims), elem_type=elem,
                dims=dims, bit_offset=int(bit) if bit is not None else None, bit_size=bits,
            ))  # fmt: skip
            continue
        tm = _TOTAL_RE.search(line)
        if tm:
            if len(stack) == 1:
                total_size = int(tm.group(1))
            elif frame["size"] is None:
                frame["size"] = int(tm.group(1))
            continue
        cm = _CLOSE_RE.match(line)
        if cm:
            if len(stack) == 1:
                break  # end of the root type
            done = stack.pop()
            parent = stack[-1]
            name_part, dims = _split_dims(cm.group(1).strip())
            name = name_part.strip()
            size = done["size"] or 0
            if name:
                parent["fields"].append(Field(
                    path=name, offset=done["offset"], size=size, type_name=_type_with_dims(done["type"], dims),
                    elem_type=done["type"], dims=dims, is_struct=not dims,
                ))  # fmt: skip
            if not dims:  # members of an array of structs are not expanded by path
                prefix = f"{name}." if name else ""  # anonymous union/struct: members join the parent
                for f in done["fields"]:
                    parent["fields"].append(Field(**{**asdict(f), "path": prefix + f.path, "dims": f.dims}))
            continue
        # static members, methods, access labels, XXX holes: not part of the byte layout
    root = stack[0]
    if total_size is None:
        total_size = max((f.offset + f.size for f in root["fields"]), default=0)
    return Layout(root_type, total_size, tuple(root["fields"]))


# ------------------------------------------------------------------ ELF


@dataclass(frozen=True)
class ElfInfo:
    path: str
    is_pie: bool  # e_type == ET_DYN: link addresses are relative to the load base
    build_id: str | None
    first_load_vaddr: int  # page-aligned vaddr of the lowest PT_LOAD
    has_symtab: bool = False  # .symtab present (not stripped)
    has_debug_info: bool = False  # .debug_info present (built with -g)


def _read_at(f, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated ELF file")
    return data


def _sections(f, hdr: dict) -> list[tuple[int, int, int, int, int, int]]:
    """(type, offset, size, link, entsize, name offset) of every section."""
    out = []
    fmt = "<IIQQQQIIQQ" if hdr["is64"] else "<IIIIIIIIII"
    for i in range(hdr["shnum"]):
        raw = _read_at(f, hdr["shoff"] + i * hdr["shentsize"], struct.calcsize(fmt))
        name, stype, _flags, _addr, off, size, link, _info, _align, entsize = struct.unpack(fmt, raw)
        out.append((stype, off, size, link, entsize, name))
    return out


def _section_names(f, hdr: dict, secs: list) -> list[str]:
    if not secs or hdr["shstrndx"] >= len(secs):
        return []
    _t, off, size, *_ = secs[hdr["shstrndx"]]
    table = _read_at(f, off, size)
    return [table[s[5] : table.find(b"\0", s[5])].decode("latin-1") for s in secs]


def _elf_header(f, path: str) -> dict:
    ident = f.read(16)
    if len(ident) < 16 or ident[:4] != b"\x7fELF":
        raise NoDebugInfo(f"{path}: not an ELF executable")
    is64 = ident[4] == 2
    if ident[5] != 1:
        raise NoDebugInfo(f"{path}: big-endian ELF is not supported")
    if is64:
        e_type, _m, _v, _entry, phoff, shoff, _fl, _eh, phentsize, phnum, shentsize, shnum, _shstrndx = struct.unpack(
            "<HHIQQQIHHHHHH", _read_at(f, 16, 48))
    else:
        e_type, _m, _v, _entry, phoff, shoff, _fl, _eh, phentsize, phnum, shentsize, shnum, _shstrndx = struct.unpack(
            "<HHIIIIIHHHHHH", _read_at(f, 16, 36))
    return {"is64": is64, "type": e_type, "phoff": phoff, "phnum": phnum, "phentsize": phentsize,
            "shoff": shoff, "shnum": shnum, "shentsize": shentsize, "shstrndx": _shstrndx}  # fmt: skip


def _notes_build_id(data: bytes) -> str | None:
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
        pos += 12
        name = data[pos : pos + namesz]
        pos += (namesz + 3) & ~3
        desc = data[pos : pos + descsz]
        pos += (descsz + 3) & ~3
        if ntype == 3 and name.rstrip(b"\0") == b"GNU":  # NT_GNU_BUILD_ID
            return desc.hex()
    return None


def read_elf_info(path: str) -> ElfInfo:
    """e_type, build-id (.note.gnu.build-id) and first PT_LOAD of an ELF file.

    Raises NoSuchProcess-free errors only: FileNotFoundError/PermissionError from open,
    NoDebugInfo when the file is not an ELF we can read.
    """
    with open(path, "rb") as f:
        hdr = _elf_header(f, path)
        build_id = None
        first_load = None
        phfmt = "<IIQQQQQQ" if hdr["is64"] else "<IIIIIIII"
        for i in range(hdr["phnum"]):
            raw = _read_at(f, hdr["phoff"] + i * hdr["phentsize"], struct.calcsize(phfmt))
            if hdr["is64"]:
                ptype, _flags, poff, vaddr, _pa, filesz, _memsz, align = struct.unpack(phfmt, raw)
            else:
                ptype, poff, vaddr, _pa, filesz, _memsz, _flags, align = struct.unpack(phfmt, raw)
            if ptype == 1 and first_load is None:  # PT_LOAD (sorted by vaddr)
                first_load = vaddr & ~(max(align, 4096) - 1) if align else vaddr
            elif ptype == 4 and build_id is None:  # PT_NOTE
                build_id = _notes_build_id(_read_at(f, poff, filesz))
        secs = _sections(f, hdr) if hdr["shnum"] else []
        if build_id is None:
            for stype, off, size, *_ in secs:
                if stype == 7:  # SHT_NOTE
                    build_id = _notes_build_id(_read_at(f, off, size))
                    if build_id:
                        break
        names = set(_section_names(f, hdr, secs))
        has_symtab = any(sec[0] == 2 for sec in secs)  # SHT_SYMTAB
    return ElfInfo(path, hdr["type"] == 3, build_id, first_load or 0, has_symtab, ".debug_info" in names)


def _elf_symbol_size(path: str, address: int) -> int | None:
    """Size of the data symbol at ``address`` from .symtab/.dynsym (nm -S), or None."""
    with open(path, "rb") as f:
        hdr = _elf_header(f, path)
        if not hdr["shnum"]:
            return None
        secs = _sections(f, hdr)
        best = None
        for stype, off, size, _link, entsize, _addr in secs:
            if stype not in (2, 11) or not entsize:  # SHT_SYMTAB, SHT_DYNSYM
                continue
            table = _read_at(f, off, size)
            for pos in range(0, size - entsize + 1, entsize):
                if hdr["is64"]:
                    _n, info, _o, _shndx, value, ssize = struct.unpack_from("<IBBHQQ", table, pos)
                else:
                    _n, value, ssize, info, _o, _shndx = struct.unpack_from("<IIIBBH", table, pos)
                if value == address and ssize:
                    if info & 0xF == 1:  # STT_OBJECT wins over anything else at that address
                        return ssize
                    best = best or ssize
        return best


# ------------------------------------------------------------------ /proc helpers


def exe_path_of(pid: int) -> str:
    """The executable file of ``pid``: its path, or ``/proc/PID/exe`` if it was deleted/replaced.

    Raises NoSuchProcess, AccessDenied.
    """
    link = f"/proc/{pid}/exe"
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        raise NoSuchProcess(pid) from None
    except PermissionError:
        raise AccessDenied(pid, "/proc/PID/exe", "run as the same user as the target, or root") from None
    except OSError as exc:  # ENOENT on kernel threads' exe link
        raise NoSuchProcess(pid, str(exc.strerror)) from None
    if target.endswith(" (deleted)") or not os.path.exists(target):
        return link  # the magic link still opens the old inode
    return target


def load_base(pid: int, exe_path: str | None = None) -> int:
    """Start address of the executable's offset-0 mapping in ``pid`` (from /proc/PID/maps).

    Matched by device+inode of /proc/PID/exe (falls back to the path, " (deleted)"
    tolerated). Raises NoSuchProcess, AccessDenied, SymbolNotFound (exe not mapped).
    """
    try:
        with open(f"/proc/{pid}/maps") as f:
            maps = f.read()
    except FileNotFoundError:
        raise NoSuchProcess(pid) from None
    except PermissionError:
        raise AccessDenied(pid, "/proc/PID/maps", "run as the same user as the target, or root") from None
    if exe_path is None:
        exe_path = f"/proc/{pid}/exe"
    want_ids: set[tuple[int, int, int]] = set()
    for candidate in (f"/proc/{pid}/exe", exe_path):
        try:
            st = os.stat(candidate)
            want_ids.add((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
        except OSError:
            pass  # dead link or no permission: the path comparison below still works
    want_paths = {os.path.realpath(exe_path)}
    try:
        want_paths.add(os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)"))
    except OSError:
        pass  # no permission on the link: match by inode only
    by_path = None
    for line in maps.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 5 or int(parts[2], 16) != 0:
            continue
        start = int(parts[0].split("-")[0], 16)
        major, minor = (int(x, 16) for x in parts[3].split(":"))
        inode = int(parts[4])
        if inode and (major, minor, inode) in want_ids:
            return start
        path = parts[5].strip().removesuffix(" (deleted)") if len(parts) > 5 else ""
        if inode and by_path is None and path in want_paths:
            by_path = start
    if by_path is not None:
        return by_path
    raise SymbolNotFound(f"{exe_path} is not mapped in process {pid}")


# ------------------------------------------------------------------ the table

_MEMORY_CACHE: dict[str, dict] = {}
_MEMORY_LOCK = threading.Lock()

_INFO_STATIC = re.compile(r'is (?:static storage|a function) at address (0x[0-9a-fA-F]+)')
_INFO_MINIMAL = re.compile(r'is at (0x[0-9a-fA-F]+) in a file compiled without debugging')
_NO_TABLE = "No symbol table is loaded"


def cache_dir() -> Path:
    return cache_root() / "symbols"


class SymbolTable:
    """Symbols and layouts of one executable file, from gdb on the file (never the process).

    gdb starts lazily, only on a cache miss; ``close()`` (or ``with``) stops it.
    """

    def __init__(self, exe_path: str, *, use_disk_cache: bool = True, timeout: float = 20.0) -> None:
        self.exe_path = exe_path
        self.timeout = timeout
        try:
            self.elf = read_elf_info(exe_path)
            st = os.stat(exe_path)
        except FileNotFoundError:
            raise SymbolNotFound(f"{exe_path}: no such executable file") from None
        except PermissionError:
            raise AccessDenied(None, exe_path, "the executable file is not readable by this user") from None
        except (ValueError, struct.error) as exc:
            raise NoDebugInfo(f"{exe_path}: unreadable ELF file ({exc})") from None
        if self.elf.build_id:
            # A stripped copy keeps the build-id but loses symbols: the flags tell them apart.
            flags = ("s" if self.elf.has_symtab else "") + ("g" if self.elf.has_debug_info else "")
            self.cache_key = f"build-{self.elf.build_id}-{flags or 'none'}"
        else:
            ident = f"{os.path.realpath(exe_path)}|{st.st_mtime_ns}|{st.st_size}"
            self.cache_key = "path-" + hashlib.sha1(ident.encode()).hexdigest()
        self._disk = (cache_dir() / f"{self.cache_key}.json") if use_disk_cache else None
        self._gdb: FileGdbSession | None = None
        self._lock = threading.RLock()
        self.gdb_starts = 0  # how many gdb processes this table started (tests check the cache)
        with _MEMORY_LOCK:
            cached = _MEMORY_CACHE.get(self.cache_key)
            if cached is None:
                cached = self._load_disk()
                _MEMORY_CACHE[self.cache_key] = cached
        self._cache = cached

    @classmethod
    def for_pid(cls, pid: int, **kw) -> SymbolTable:
        """The table of the executable that ``pid`` runs (raises NoSuchProcess/AccessDenied)."""
        return cls(exe_path_of(pid), **kw)

    # ----------------------------------------------------------- cache
    def _load_disk(self) -> dict:
        empty = {"version": CACHE_VERSION, "symbols": {}, "layouts": {}}
        if self._disk is None:
            return empty
        try:
            data = json.loads(self._disk.read_text())
        except (OSError, ValueError):
            return empty  # no cache yet, or a corrupt one: rebuild it
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return empty
        data.setdefault("symbols", {})
        data.setdefault("layouts", {})
        return data

    def _save_disk(self) -> None:
        if self._disk is None:
            return
        try:
            self._disk.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._disk.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({**self._cache, "exe": self.exe_path}, separators=(",", ":")))
            os.replace(tmp, self._disk)
        except OSError:
            pass  # a read-only home must not break symbol lookups; we just cache less

    # ----------------------------------------------------------- gdb
    def _session(self) -> FileGdbSession:
        if self._gdb is None:
            self._gdb = FileGdbSession(timeout=self.timeout)
            self.gdb_starts += 1
            try:
                self._gdb.load(self.exe_path)
            except BaseException:
                self._gdb.exit()
                self._gdb = None
                raise
        return self._gdb

    def _no_debug(self, what: str = "") -> NoDebugInfo:
        tail = f": cannot {what}" if what else ""
        return NoDebugInfo(f"{self.exe_path}: no debug info (built without -g or stripped){tail}")

    def close(self) -> None:
        if self._gdb is not None:
            self._gdb.exit()
            self._gdb = None

    def __enter__(self) -> SymbolTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------- lookups
    def resolve(self, name: str) -> Symbol:
        """Link-time address, size and type of global ``name``.

        Without debug info the address and size still come from the ELF symbol table
        (``type_name`` is None). Raises InvalidExpression, SymbolNotFound, NoDebugInfo
        (stripped: no symbol table at all), ToolMissing/ToolFailed (gdb).
        """
        base, steps = check_symbol_expr(name)
        if steps:
            raise InvalidExpression(f"{name!r} is an expression, not a symbol name: use resolve_expr")
        hit = self._cached("symbols", base, self._lookup_symbol)
        return Symbol(hit["name"], hit["address"], hit["size"], hit["type_name"])

    def _lookup_symbol(self, name: str) -> dict:
        gdb = self._session()
        try:
            text = gdb.console(f"info address {name}")
        except GdbCommandError as exc:
            if _NO_TABLE in exc.gdb_message:
                return {"error": ["NoDebugInfo", str(self._no_debug(f"find '{name}'"))]}
            if "No symbol" in exc.gdb_message:
                if not (self.elf.has_symtab or self.elf.has_debug_info):  # stripped: we cannot know
                    return {"error": ["NoDebugInfo", str(self._no_debug(f"find '{name}'"))]}
                return {"error": ["SymbolNotFound", f"no symbol '{name}' in {self.exe_path}"]}
            raise
        m = _INFO_STATIC.search(text)
        if m:
            address = int(m.group(1), 16)
            type_name = gdb.console(f"whatis {name}").strip().removeprefix("type = ").strip()
            try:
                size = int(gdb.evaluate(f"sizeof({name})"))
            except (GdbCommandError, ValueError):
                size = _elf_symbol_size(self.exe_path, address) or 0  # functions: no sizeof
            return {"name": name, "address": address, "size": size, "type_name": type_name}
        m = _INFO_MINIMAL.search(text)
        if m:
            address = int(m.group(1), 16)
            size = _elf_symbol_size(self.exe_path, address) or 0
            return {"name": name, "address": address, "size": size, "type_name": None}
        if "is constant" in text:
            why = "the compiler folded it into a constant, it has no address"
        else:  # thread-locals, registers, optimized-out values
            why = text.strip().rstrip(".")
        return {"error": ["SymbolNotFound", f"'{name}' in {self.exe_path} is not a static global: {why}"]}

    def layout(self, type_or_symbol: str) -> Layout:
        """Flattened member layout of a struct type or of a global's type (``ptype/o``).

        A scalar or array yields a Layout with no fields. Raises InvalidExpression,
        SymbolNotFound, NoDebugInfo, ToolMissing/ToolFailed.
        """
        key = type_or_symbol.strip()
        kw = re.match(r"(struct|class|union|enum)\s+(.*)$", key)
        check_symbol_expr(kw.group(2) if kw else key)
        return self._layout(key)

    def _layout(self, key: str) -> Layout:
        """layout() without the user-input guard, for type names gdb itself gave us."""
        if any(c in key for c in "();$=\n\"'"):
            raise InvalidExpression(f"refused type name {key!r}")
        return Layout.from_json(self._cached("layouts", key, self._lookup_layout))

    def _cached(self, table: str, key: str, lookup) -> dict:
        """Memory/disk cache in front of a gdb lookup; cached errors are raised again, typed."""
        with self._lock:
            hit = self._cache[table].get(key)
            if hit is None:
                hit = lookup(key)
                if "error" in hit:  # the cache is shared by every copy of the file: no path in it
                    hit = {"error": [hit["error"][0], hit["error"][1].replace(self.exe_path, "{exe}")]}
                self._cache[table][key] = hit
                self._save_disk()
        if "error" in hit:
            kind, msg = hit["error"]
            raise (NoDebugInfo if kind == "NoDebugInfo" else SymbolNotFound)(msg.replace("{exe}", self.exe_path))
        return hit

    def _lookup_layout(self, key: str) -> dict:
        gdb = self._session()
        try:
            text = gdb.console(f"ptype/o {key}")
        except GdbCommandError as exc:
            if _NO_TABLE in exc.gdb_message:
                return {"error": ["NoDebugInfo", str(self._no_debug(f"get the layout of '{key}'"))]}
            if "No symbol" in exc.gdb_message or "no debug info" in exc.gdb_message:
                return {"error": ["SymbolNotFound", f"no symbol or type '{key}' in {self.exe_path}"]}
            raise
        if "no debug info>" in text:
            return {"error": ["NoDebugInfo", str(self._no_debug(f"get the layout of '{key}'"))]}
        parsed = parse_ptype_o(text)
        if parsed is None:
            type_name = text.strip().removeprefix("type = ").strip()
            try:
                size = int(gdb.evaluate(f"sizeof({key})"))
            except (GdbCommandError, ValueError):
                size = 0  # e.g. an incomplete type
            parsed = Layout(type_name, size, ())
        return parsed.to_json()

    def resolve_expr(self, expr: str) -> ResolvedExpr:
        """Address, size and type of ``sym``, ``sym.field.sub``, ``sym.arr[3]``, ``sym.arr[3].x``.

        Offsets come from the ``ptype/o`` layout. Raises InvalidExpression,
        SymbolNotFound (unknown symbol/field, index out of range), NoDebugInfo (a field
        of a symbol without debug info), ToolMissing/ToolFailed.
        """
        base, steps = check_symbol_expr(expr)
        sym = self.resolve(base)
        if not steps:
            return ResolvedExpr(expr.strip(), sym.address, sym.size, sym.type_name, sym)
        if not sym.has_debug_info:
            raise self._no_debug(f"resolve '{expr.strip()}'")
        offset, size, type_name = 0, sym.size, sym.type_name or ""
        elem, dims = _split_dims(type_name)
        layout: Layout | None = None
        layout_base, layout_key, prefix = 0, base, ""
        where = base
        cur: Field | None = None
        for kind, value in steps:
            if kind == "index":
                if not dims:
                    raise SymbolNotFound(f"'{where}' is not an array")
                if value >= dims[0]:
                    raise SymbolNotFound(f"index {value} out of range for '{where}' ({dims[0]} elements)")
                stride = size // dims[0]
                offset += value * stride
                size, dims = stride, dims[1:]
                type_name = _type_with_dims(elem, dims)
                layout, layout_base, layout_key, prefix = None, offset, elem, ""
                where += f"[{value}]"
                cur = None
                continue
            if dims:
                raise SymbolNotFound(f"'{where}' is an array: index it first ('{where}[0].{value}')")
            if layout is None:
                layout = self._layout(layout_key)
            f = layout.get(prefix + str(value))
            if f is None:
                raise SymbolNotFound(f"no field '{value}' in '{where}' ({layout.type_name})")
            cur = f
            offset = layout_base + f.offset
            size, type_name, elem, dims = f.size, f.type_name, f.elem_type, f.dims
            prefix = f.path + "."
            where += f".{value}"
        return ResolvedExpr(expr.strip(), sym.address + offset, size, type_name, sym, offset, cur)

    # ----------------------------------------------------------- runtime
    def runtime_address(self, what: Symbol | ResolvedExpr | int, pid: int) -> int:
        """Where ``what`` lives in process ``pid``: link address + load bias for PIE (ET_DYN).

        Raises NoSuchProcess, AccessDenied, SymbolNotFound (exe not mapped in pid).
        """
        addr = what if isinstance(what, int) else what.address
        if not self.elf.is_pie:
            return addr
        return addr + load_base(pid, self.exe_path) - self.elf.first_load_vaddr
