"""Where gdb finds an ELF file's debug info, and which file a process really maps.

Separate debug info (``objcopy --only-keep-debug`` + ``--add-gnu-debuglink``, or a distribution's
``-dbgsym`` package) is looked up as gdb does: ``DIR/.build-id/xx/rest.debug`` under each
debug-file directory (the debug file's build-id must match), then the ``.gnu_debuglink`` name
beside the file, in ``.debug/`` beside it and under each debug-file directory + the file's
directory (the link's CRC32 must match). The debug-file directories default to gdb's own
``show debug-file-directory`` (usually /usr/lib/debug).

A process in another mount namespace maps files whose paths exist only there (or name another
file here): :func:`mapped_file` opens them through ``/proc/PID/root`` or ``/proc/PID/map_files``
and only when the device+inode match the mapping's, so a different file at that path is never used.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import zlib

from hftmem_tui.sources.elf import SHT_NOTE, ElfFile, build_id_of_notes
from hftmem_tui.sources.paths import cache_root
from hftmem_tui.sources.procfs import PROCFS, pid_path

__all__ = ["DEFAULT_DEBUG_DIR", "gdb_debug_dirs", "debuglink_of", "find_debug_file", "debug_identity",
           "has_debug_section", "mapped_file", "gdb_path"]

DEFAULT_DEBUG_DIR = "/usr/lib/debug"
_GDB_DIRS: tuple[str, ...] | None = None
_LOCK = threading.Lock()
_SHT_NOBITS = 8  # a debug file's placeholders for the code it does not hold
_CRC: dict[tuple[str, int, int], int] = {}  # (path, size, mtime_ns) -> crc32: a debug file is read once


def gdb_debug_dirs() -> tuple[str, ...]:
    """gdb's ``show debug-file-directory`` without init files, as our gdb sessions run (asked once per
    process); /usr/lib/debug without gdb."""
    global _GDB_DIRS
    with _LOCK:
        if _GDB_DIRS is None:
            dirs: tuple[str, ...] = (DEFAULT_DEBUG_DIR,)
            gdb = shutil.which("gdb")
            if gdb:
                try:
                    out = subprocess.run([gdb, "--nx", "--nh", "-batch", "-ex", "show debug-file-directory"],
                                         capture_output=True, text=True, timeout=10).stdout
                    m = re.search(r'is "([^"]*)"', out)
                    if m and m.group(1):
                        dirs = tuple(d for d in m.group(1).split(":") if d)
                except (OSError, subprocess.TimeoutExpired):
                    pass  # gdb unusable: its compiled-in default is what it would have said
            _GDB_DIRS = dirs
        return _GDB_DIRS


def _sections(path: str) -> tuple[dict[str, bytes], set[str]]:
    """(.gnu_debuglink and note contents, every section name) of an ELF file; ({}, set()) if unreadable."""
    try:
        with ElfFile(path) as elf:
            secs = elf.sections()
            data = {s.name: elf.read(s.offset, s.size) for s in secs
                    if s.name == ".gnu_debuglink" or (s.type == SHT_NOTE and s.name.startswith(".note"))}
            return data, {s.name for s in secs if s.type != _SHT_NOBITS}
    except (OSError, ValueError):  # MalformedElf, not an ELF
        return {}, set()


def has_debug_section(path: str, section: str = ".debug_info") -> bool:
    """Whether ``path`` itself holds ``section`` with contents (not a NOBITS placeholder)."""
    return section in _sections(path)[1]


def _build_id(data: dict[str, bytes]) -> str | None:
    for name, raw in data.items():
        if name.startswith(".note"):
            bid = build_id_of_notes(raw)
            if bid:
                return bid
    return None


def debuglink_of(path: str) -> tuple[str, int] | None:
    """(file name, CRC32) from ``path``'s .gnu_debuglink section, or None."""
    raw = _sections(path)[0].get(".gnu_debuglink")
    if not raw or b"\0" not in raw:
        return None
    name = raw[:raw.index(b"\0")].decode("latin-1")
    crc_at = (raw.index(b"\0") + 4) & ~3
    if not name or crc_at + 4 > len(raw) or "/" in name:
        return None
    return name, int.from_bytes(raw[crc_at:crc_at + 4], "little")


def _crc32(path: str) -> int | None:
    try:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns)
        with _LOCK:
            if key in _CRC:
                return _CRC[key]
        crc = 0
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                crc = zlib.crc32(chunk, crc)  # the CRC gdb's gnu_debuglink_crc32 computes
    except OSError:
        return None
    with _LOCK:
        _CRC[key] = crc
    return crc


def find_debug_file(path: str, debug_dirs: tuple[str, ...] | list[str] | None = None, *,
                    name: str | None = None, beside: str | None = None) -> str | None:
    """The separate debug file gdb would use for ELF file ``path``, or None.

    ``debug_dirs``: the debug-file directories (default: gdb's). ``name``: the file's path as
    its process sees it (for DIR + the file's directory; default ``path``). ``beside``: the
    directory holding the file, as we can open it (default the directory of ``path``). Never raises.
    """
    dirs = tuple(debug_dirs) if debug_dirs is not None else gdb_debug_dirs()
    data, _names = _sections(path)
    bid = _build_id(data)
    if bid and len(bid) > 2:
        for d in dirs:
            cand = os.path.join(d, ".build-id", bid[:2], bid[2:] + ".debug")
            if os.path.isfile(cand) and _build_id(_sections(cand)[0]) == bid:
                return cand
    link = debuglink_of(path)
    if link is None:
        return None
    file, crc = link
    here = beside if beside is not None else os.path.dirname(path)
    seen_dir = os.path.dirname(name or path)
    cands = [os.path.join(here, file), os.path.join(here, ".debug", file)]
    cands += [os.path.join(d, seen_dir.lstrip("/"), file) for d in dirs]
    for cand in cands:
        if os.path.isfile(cand) and os.path.realpath(cand) != os.path.realpath(path) and _crc32(cand) == crc:
            return cand
    return None


def debug_identity(path: str, debug_dirs: tuple[str, ...] | list[str] | None = None) -> str:
    """"path|size|mtime_ns" of the debug file gdb would use for ``path``, "none" without one.

    A cache keyed on it is invalidated when a debug file is installed, replaced or removed. Never raises.
    """
    found = find_debug_file(path, debug_dirs)
    if found is None:
        return "none"
    try:
        st = os.stat(found)
    except OSError:
        return "none"
    return f"{os.path.realpath(found)}|{st.st_size}|{st.st_mtime_ns}"


def mapped_file(pid: int, path: str, dev: tuple[int, int] | None, inode: int, start: int = 0, end: int = 0,
                procfs: str = PROCFS) -> str | None:
    """A path we can open that is the very file ``pid`` maps as ``path`` (major, minor ``dev``, ``inode``).

    Tried in order: ``path`` itself, ``/proc/PID/root/path`` (another mount namespace), then
    ``/proc/PID/map_files/START-END``; each must have the mapping's device and inode. None when
    none does (or no identity is known and ``path`` does not exist). Never raises.
    """
    cands = [path, pid_path(pid, "root", procfs) + path]
    if start and end:
        cands.append(pid_path(pid, f"map_files/{start:x}-{end:x}", procfs))
    for cand in cands:
        try:
            st = os.stat(cand)
        except OSError:
            continue
        if dev is None or not inode:
            return cand  # nothing to check it against: the first that exists, as before
        if (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino) == (dev[0], dev[1], inode):
            return cand
    return None


def gdb_path(path: str) -> str:
    """A path gdb loads as this very file.

    gdb resolves symlinks, and ``/proc/PID/root/X`` or ``/proc/PID/exe`` resolve to X as *we* see
    it, which may be another file or none: such a file is copied (once, named by its identity)
    into the cache and the copy is returned. Raises OSError when it cannot be read or copied.
    """
    real = os.path.realpath(path)
    with open(path, "rb") as src:
        st = os.fstat(src.fileno())
        try:
            if os.path.samefile(real, path):
                return path  # gdb's resolved name is the very file: nothing to copy
        except OSError:
            pass  # the resolved name does not exist here: gdb would fail on it
        dest = cache_root() / "files" / f"{st.st_dev:x}-{st.st_ino}-{st.st_size}-{st.st_mtime_ns}" / \
            os.path.basename(real)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)  # from the descriptor we checked: never a file swapped in since
            os.chmod(tmp, 0o700)
            os.replace(tmp, dest)
    return str(dest)
