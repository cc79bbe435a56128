"""Addresses, sizes, types and field layouts of globals, WITHOUT ptrace.

Everything here comes from the executable *file*: gdb runs on it (never on the process,
see ``gdbmi``), and the ELF reader (:mod:`~hftmem_tui.sources.elf`) gives the build-id,
``e_type`` (PIE or not) and symbol sizes. The only thing taken from the running process is
its load base, read from ``/proc/PID/maps`` through procfs. Results are cached in memory and
on disk (``$XDG_CACHE_HOME/hftmem/symbols/<build-id>.json``) so a second run starts no gdb.
Symbol expressions and layouts (parsed from ``ptype/o``) live in :mod:`~hftmem_tui.sources.layout`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from pathlib import Path

from hftmem_tui.errors import (
    AccessDenied,
    NoDebugInfo,
    NoSuchProcess,
    SourceError,
    SymbolNotFound,
)
from hftmem_tui.sources.debuginfo import debug_identity, gdb_path, mapped_file
from hftmem_tui.sources.elf import ElfInfo, read_elf_info, symbol_size
from hftmem_tui.sources.gdb.file_session import FileGdbSession, GdbCommandError
from hftmem_tui.sources.layout import (
    Field,
    InvalidExpression,
    Layout,
    ResolvedExpr,
    Symbol,
    check_symbol_expr,
    parse_ptype_o,
    split_dims,
    type_with_dims,
)
from hftmem_tui.sources.paths import cache_root
from hftmem_tui.sources.procfs import PROCFS, exe_identity, parse_maps, pid_path, read_link, read_text

# Field, Layout, Symbol... are defined in layout.py and ElfInfo in elf.py; they are importable
# from here too, where their callers have always found them.
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
_EXE_HINT = "run as the same user as the target, or root"


# ------------------------------------------------------------------ /proc helpers


def exe_path_of(pid: int, procfs: str = PROCFS) -> str:
    """The executable file of ``pid``: its path (through ``/proc/PID/root`` when only the process's
    mount namespace has it), or ``/proc/PID/exe`` if it was deleted/replaced (another file there).

    Raises NoSuchProcess, AccessDenied.
    """
    link = pid_path(pid, "exe", procfs)
    try:
        target = read_link(pid, "exe", procfs)
    except AccessDenied:
        raise AccessDenied(pid, "/proc/PID/exe", _EXE_HINT) from None
    except NoSuchProcess:
        raise NoSuchProcess(pid) from None
    except SourceError as exc:  # any other OS refusal: no process we can inspect, with the OS's reason
        raise NoSuchProcess(pid, str(getattr(exc.__cause__, "strerror", None) or exc)) from None
    if target.endswith(" (deleted)"):
        return link  # the magic link still opens the old inode
    try:
        _path, dev, ino = exe_identity(pid, procfs)
    except SourceError:
        return target if os.path.exists(target) else link
    # Only the very file the process runs: a different one at that path (a container's host) is not it.
    return mapped_file(pid, target, (os.major(dev), os.minor(dev)), ino, procfs=procfs) or link


def _exe_ids(pid: int, exe_path: str | None, procfs: str) -> tuple[set[tuple[int, int, int]], set[str]]:
    """((major, minor, inode) and paths) that name pid's executable in its maps."""
    ids: set[tuple[int, int, int]] = set()
    paths: set[str] = set()
    try:
        paths.add(read_link(pid, "exe", procfs).removesuffix(" (deleted)"))
        _path, dev, ino = exe_identity(pid, procfs)
        ids.add((os.major(dev), os.minor(dev), ino))
    except SourceError:
        pass  # dead link or no permission: match by the caller's file below
    if exe_path is not None:
        try:
            st = os.stat(exe_path)
            ids.add((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
        except OSError:
            pass  # the path comparison below still works
        paths.add(os.path.realpath(exe_path))
    return ids, paths


def load_base(pid: int, exe_path: str | None = None, procfs: str = PROCFS) -> int:
    """Start address of the executable's offset-0 mapping in ``pid`` (from /proc/PID/maps).

    Matched by device+inode of /proc/PID/exe (falls back to the path, " (deleted)"
    tolerated). Raises NoSuchProcess, AccessDenied, SymbolNotFound (exe not mapped).
    """
    try:
        maps = parse_maps(read_text(pid, "maps", procfs))
    except AccessDenied:
        raise AccessDenied(pid, "/proc/PID/maps", _EXE_HINT) from None
    want_ids, want_paths = _exe_ids(pid, exe_path, procfs)
    by_path = None
    for m in maps:
        if m.offset != 0 or not m.inode:
            continue
        major, minor = (int(x, 16) for x in m.dev.split(":"))
        if (major, minor, m.inode) in want_ids:
            return m.start
        if by_path is None and m.path.strip().removesuffix(" (deleted)") in want_paths:
            by_path = m.start
    if by_path is not None:
        return by_path
    raise SymbolNotFound(f"{exe_path or pid_path(pid, 'exe', procfs)} is not mapped in process {pid}")


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

    def __init__(self, exe_path: str, *, use_disk_cache: bool = True, timeout: float = 20.0,
                 debug_dirs: tuple[str, ...] | None = None) -> None:
        self.exe_path = exe_path
        self.timeout = timeout
        self.debug_dirs = debug_dirs  # None: gdb's own debug-file-directory
        try:
            self.elf = read_elf_info(exe_path)
            st = os.stat(exe_path)
        except FileNotFoundError:
            raise SymbolNotFound(f"{exe_path}: no such executable file") from None
        except PermissionError:
            raise AccessDenied(None, exe_path, "the executable file is not readable by this user") from None
        except ValueError as exc:  # MalformedElf
            raise NoDebugInfo(f"{exe_path}: unreadable ELF file ({exc})") from None
        if self.elf.build_id:
            # A stripped copy keeps the build-id but loses symbols: the flags tell them apart.
            flags = ("s" if self.elf.has_symtab else "") + ("g" if self.elf.has_debug_info else "")
            self.cache_key = f"build-{self.elf.build_id}-{flags or 'none'}"
        else:
            ident = f"{os.path.realpath(exe_path)}|{st.st_mtime_ns}|{st.st_size}"
            self.cache_key = "path-" + hashlib.sha1(ident.encode()).hexdigest()
        # The answer depends on the separate debug file gdb would load too: installing one retries.
        dbg = debug_identity(exe_path, debug_dirs)
        if dbg != "none":
            self.cache_key += "-dbg-" + hashlib.sha1(dbg.encode()).hexdigest()[:16]
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
                if self.debug_dirs is not None:
                    self._gdb.console("set debug-file-directory " + ":".join(self.debug_dirs))
                try:
                    loaded = gdb_path(self.exe_path)  # gdb resolves /proc/PID/root/X to our X: maybe another file
                except OSError:
                    loaded = self.exe_path  # unreadable: gdb says why in its own words
                self._gdb.load(loaded)
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
                size = symbol_size(self.exe_path, address) or 0  # functions: no sizeof
            return {"name": name, "address": address, "size": size, "type_name": type_name}
        m = _INFO_MINIMAL.search(text)
        if m:
            address = int(m.group(1), 16)
            size = symbol_size(self.exe_path, address) or 0
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
        elem, dims = split_dims(type_name)
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
                type_name = type_with_dims(elem, dims)
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
