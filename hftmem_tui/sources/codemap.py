"""Code addresses of a running process -> function+offset and file:line, WITHOUT ptrace.

perf hands us raw instruction pointers (a watchpoint's trap address, call-chain return
addresses). We turn them into :class:`~hftmem_tui.sources.watchpoint.Frame` objects from the ELF
*files* the process maps (read with :mod:`~hftmem_tui.sources.elf`): the mapping (from
/proc/PID/maps, parsed by procfs) gives the file and the load bias,
the file's .symtab/.dynsym gives the enclosing function, ``addr2line`` gives file:line when the
file or its separate debug file (found as gdb finds it, :mod:`~hftmem_tui.sources.debuginfo`) has
DWARF line info, and ``objdump`` finds the instruction that precedes a trap address
(x86 data breakpoints report the instruction *after* the write). Nothing here touches the
target beyond reading /proc/PID/maps. A file is opened only where its device+inode are the
mapping's (``/proc/PID/root`` for a process in another mount namespace). Every result is cached
per (file, address).
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass

from hftmem_tui.sources.debuginfo import find_debug_file, has_debug_section, mapped_file
from hftmem_tui.sources.elf import PT_LOAD, SHT_DYNSYM, SHT_SYMTAB, ElfFile
from hftmem_tui.sources.procfs import PROCFS, parse_maps, pid_path, read_text
from hftmem_tui.sources.watchpoint import Frame

__all__ = ["ElfFunctions", "CodeMap", "ExecMapping", "read_exec_mappings", "demangle"]

_TOOL_TIMEOUT = 10.0
_FUNC_TYPES = (2, 10)  # STT_FUNC, STT_GNU_IFUNC


@dataclass(frozen=True, slots=True)
class ExecMapping:
    start: int
    end: int
    offset: int
    path: str  # as the process sees it
    dev: tuple[int, int] | None = None  # (major, minor) of the mapped file, from maps
    inode: int = 0


def read_exec_mappings(pid: int, procfs: str = PROCFS) -> tuple[ExecMapping, ...]:
    """The file-backed executable mappings of ``pid`` (" (deleted)" dropped from their paths).

    An exited zombie maps nothing: (). Raises NoSuchProcess, AccessDenied, SourceError.
    """
    return tuple(ExecMapping(m.start, m.end, m.offset, m.path.removesuffix(" (deleted)"), _dev(m.dev), m.inode)
                 for m in parse_maps(read_text(pid, "maps", procfs))
                 if "x" in m.perms and m.path.startswith("/"))


def _dev(text: str) -> tuple[int, int] | None:
    """(major, minor) of a maps "fd:01" device field; None if unparsable."""
    try:
        major, minor = (int(x, 16) for x in text.split(":"))
    except ValueError:
        return None
    return major, minor


def open_path(pid: int, m: ExecMapping, procfs: str = PROCFS) -> str | None:
    """A path that opens the very file mapping ``m`` of ``pid`` maps (see debuginfo.mapped_file), or None."""
    return mapped_file(pid, m.path, m.dev, m.inode, m.start, m.end, procfs)


_DEMANGLED: dict[str, str] = {}
_DEMANGLE_LOCK = threading.Lock()


def demangle(names: list[str]) -> dict[str, str]:
    """C++ names demangled by one ``c++filt`` run (cached); names it cannot demangle map to themselves."""
    with _DEMANGLE_LOCK:
        todo = sorted({n for n in names if n.startswith("_Z") and n not in _DEMANGLED})
        if todo:
            exe = shutil.which("c++filt")
            out: list[str] = []
            if exe:
                try:
                    r = subprocess.run([exe], input="\n".join(todo) + "\n", capture_output=True, text=True,
                                       timeout=_TOOL_TIMEOUT)
                    out = r.stdout.splitlines()
                except (OSError, subprocess.TimeoutExpired):
                    out = []
            if len(out) != len(todo):
                out = todo  # no binutils: keep the mangled names, still useful
            _DEMANGLED.update(zip(todo, out))
        return {n: _DEMANGLED.get(n, n) for n in names}


class ElfFunctions:
    """Functions of one ELF file (from .symtab and .dynsym) and its PT_LOAD segments.

    Without its own line info (or symbols), those of its separate debug file are used
    (``debug_dirs``, ``name``: see :func:`~hftmem_tui.sources.debuginfo.find_debug_file`).
    """

    def __init__(self, path: str, *, debug_dirs: tuple[str, ...] | None = None, name: str | None = None,
                 beside: str | None = None) -> None:
        self.path = path
        self.loads: list[tuple[int, int, int]] = []  # (p_offset, p_filesz, p_vaddr)
        self.has_lines = False
        self.lines_path = path  # the file addr2line reads: this one, or its debug file
        starts: dict[int, tuple[int, str]] = {}
        by_name: dict[str, int] = {}
        try:
            with ElfFile(path) as elf:
                self._read(elf, starts, by_name)
        except (OSError, ValueError):  # MalformedElf is a ValueError
            pass  # unreadable or not an ELF: addresses in it stay "??" (what was read is kept)
        if self.loads and (not self.has_lines or not starts):
            self._read_debug_file(find_debug_file(path, debug_dirs, name=name, beside=beside), starts, by_name)
        self.by_name = by_name  # raw (mangled) name -> link-time address
        self._starts = sorted(starts)
        self._info = starts
        self._names = demangle([n for _s, n in starts.values()]) if starts else {}

    def _read(self, elf: ElfFile, starts: dict[int, tuple[int, str]], by_name: dict[str, int]) -> None:
        """Fill loads, has_lines, starts (address -> (size, name)) and by_name from ``elf``."""
        if not elf.header.is64:
            return  # 64-bit files only, as always: the targets are x86-64 processes
        self.loads.extend((s.offset, s.filesz, s.vaddr) for s in elf.segments() if s.type == PT_LOAD)
        secs = elf.sections()
        self.has_lines = any(sec.name == ".debug_line" for sec in secs)
        self._read_symbols(elf, secs, starts, by_name)

    @staticmethod
    def _read_symbols(elf: ElfFile, secs, starts: dict[int, tuple[int, str]], by_name: dict[str, int]) -> None:
        """Function symbols of ``elf`` into starts (address -> (size, name)) and by_name."""
        # .symtab first: it has the local (static, anonymous-namespace) functions too.
        for want in (SHT_SYMTAB, SHT_DYNSYM):
            for sec in secs:
                if sec.type != want or not sec.entsize or sec.link >= len(secs):
                    continue
                for sym in elf.symbols(sec, secs):
                    if sym.kind not in _FUNC_TYPES or not sym.value or sym.shndx == 0:
                        continue
                    by_name.setdefault(sym.name, sym.value)  # aliases (malloc = __libc_malloc) too
                    if sym.value in starts and starts[sym.value][0]:
                        continue
                    starts[sym.value] = (sym.size, sym.name)

    def _read_debug_file(self, debug: str | None, starts: dict[int, tuple[int, str]],
                         by_name: dict[str, int]) -> None:
        """Line info and (for a fully stripped file) the symbols of the separate debug file."""
        if debug is None:
            return
        if not self.has_lines and has_debug_section(debug, ".debug_line"):
            self.has_lines, self.lines_path = True, debug
        if not starts:
            try:
                with ElfFile(debug) as elf:
                    self._read_symbols(elf, elf.sections(), starts, by_name)
            except (OSError, ValueError):
                pass  # an unreadable debug file names nothing more

    def vaddr(self, file_offset: int) -> int | None:
        """The link-time address of a byte at ``file_offset`` in the file."""
        for poff, filesz, vaddr in self.loads:
            if poff <= file_offset < poff + filesz:
                return file_offset - poff + vaddr
        return None

    def file_offset(self, vaddr: int) -> int | None:
        """Where the byte at link-time address ``vaddr`` lives in the file (uprobes take file offsets)."""
        for poff, filesz, seg_vaddr in self.loads:
            if seg_vaddr <= vaddr < seg_vaddr + filesz:
                return vaddr - seg_vaddr + poff
        return None

    def function_at(self, vaddr: int) -> tuple[str, int, int] | None:
        """(demangled name, start, offset) of the function containing ``vaddr``."""
        i = bisect.bisect_right(self._starts, vaddr) - 1
        if i < 0:
            return None
        start = self._starts[i]
        size, name = self._info[start]
        nxt = self._starts[i + 1] if i + 1 < len(self._starts) else None
        if size and vaddr >= start + size:
            return None
        if not size and nxt is not None and vaddr >= nxt:
            return None
        return self._names.get(name, name), start, vaddr - start


class _Addr2Line:
    """One long-lived ``addr2line -a -f -i -C -e FILE`` reading addresses on stdin.

    It flushes after each address; each query is followed by the sentinel address 0 so we know
    where a variable-length answer (one function + file:line per inlining level) ends.
    """

    _SENTINEL = "0x0000000000000000"

    def __init__(self, path: str) -> None:
        exe = shutil.which("addr2line")
        self._proc = None
        if exe:
            try:
                self._proc = subprocess.Popen([exe, "-a", "-f", "-i", "-C", "-e", path], stdin=subprocess.PIPE,
                                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                              bufsize=1)
            except OSError:
                self._proc = None

    def lookup(self, vaddr: int) -> list[tuple[str | None, str | None, int | None]]:
        """(function, file, line) per inlining level, innermost first; [] when unknown."""
        if self._proc is None or self._proc.poll() is not None:
            return []
        try:
            self._proc.stdin.write(f"{vaddr:#x}\n0\n")
            self._proc.stdin.flush()
            lines = [self._proc.stdout.readline().strip()]  # the echoed address
            while True:
                line = self._proc.stdout.readline()
                if not line:
                    return []
                line = line.strip()
                if line == self._SENTINEL:
                    self._proc.stdout.readline()
                    self._proc.stdout.readline()
                    break
                lines.append(line)
        except (OSError, ValueError):
            return []
        out = []
        body = lines[1:]
        for func, where in zip(body[0::2], body[1::2]):
            path, _, rest = where.rpartition(":")
            m = re.match(r"(\d+)", rest)
            ok = path and not path.startswith("??") and m and m.group(1) != "0"
            out.append((None if func == "??" else func, path if ok else None, int(m.group(1)) if ok else None))
        return [o for o in out if o != (None, None, None)]

    def close(self) -> None:
        if self._proc is not None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
            self._proc = None


_OBJDUMP_LINE = re.compile(r"^\s*([0-9a-f]+):\t")


def _previous_instruction(path: str, func_start: int, vaddr: int) -> int | None:
    """Address of the instruction that ends at ``vaddr``, by disassembling from the function start."""
    exe = shutil.which("objdump")
    if not exe or vaddr <= func_start:
        return None
    try:
        r = subprocess.run([exe, "-d", "--no-show-raw-insn", f"--start-address={func_start:#x}",
                            f"--stop-address={vaddr:#x}", path], capture_output=True, text=True,
                           timeout=_TOOL_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    last = None
    for line in r.stdout.splitlines():
        m = _OBJDUMP_LINE.match(line)
        if m:
            last = int(m.group(1), 16)
    return last


class CodeMap:
    """Symbolise code addresses of one process; caches per file. ``close()`` stops helpers."""

    def __init__(self, pid: int, *, procfs: str = PROCFS, debug_dirs: tuple[str, ...] | None = None) -> None:
        self.pid = pid
        self.procfs = procfs
        self.debug_dirs = debug_dirs  # None: gdb's debug-file-directory
        self._maps = read_exec_mappings(pid, procfs)
        self._elves: dict[str, ElfFunctions | None] = {}
        self._a2l: dict[str, _Addr2Line] = {}
        self._cache: dict[tuple[int, bool, bool], tuple[Frame, ...]] = {}
        self._lock = threading.Lock()

    def _mapping(self, address: int) -> ExecMapping | None:
        for m in self._maps:
            if m.start <= address < m.end:
                return m
        return None

    def _elf(self, m: ExecMapping) -> ElfFunctions | None:
        """The functions of the file ``m`` maps, read where its identity matches; None if nowhere."""
        key = f"{m.path}|{m.dev}|{m.inode}"
        if key not in self._elves:
            path = open_path(self.pid, m, self.procfs)
            # /proc/PID/map_files/A-B has no directory of its own: a debuglink is beside the file's name.
            beside = pid_path(self.pid, "root", self.procfs) + os.path.dirname(m.path) if path and \
                "/map_files/" in path else None
            self._elves[key] = None if path is None else ElfFunctions(path, debug_dirs=self.debug_dirs,
                                                                         name=m.path, beside=beside)
        return self._elves[key]

    def frame(self, address: int, *, trap: bool = False, return_address: bool = False) -> Frame:
        """The Frame of a code address: its real (not inlined) function+offset and that function's line.

        ``trap``: ``address`` is where a data breakpoint trapped; the frame describes the
        instruction just before it (the one that wrote). ``return_address``: a call-chain entry
        past a call; its line is looked up at ``address - 1`` (inside the call).
        """
        return self.frames(address, trap=trap, return_address=return_address)[-1]

    def frames(self, address: int, *, trap: bool = False, return_address: bool = False) -> tuple[Frame, ...]:
        """Like gdb's backtrace for one pc: the inlined frames, innermost first, then the real function."""
        key = (address, trap, return_address)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                return hit
            m = self._mapping(address)
            if m is None:  # a library loaded after we read maps
                self._maps = read_exec_mappings(self.pid, self.procfs)
                m = self._mapping(address)
            frames = self._symbolise(address, m, trap, return_address)
            self._cache[key] = frames
            return frames

    def hit_frames(self, trap_ip: int, return_addresses) -> tuple[Frame, tuple[Frame, ...]]:
        """A data breakpoint hit as (location, backtrace), shared by the perf and gdb backends.

        Like gdb's frame #0: the writing instruction's own (innermost, maybe inlined) source line,
        named by the real function that contains it + offset (what objdump and perf show); then
        the inlined frames and each caller (``return_addresses``, outermost last).
        """
        first = self.frames(trap_ip, trap=True)
        rest = [f for a in return_addresses for f in self.frames(a, return_address=True)]
        location = first[-1] if len(first) == 1 else dataclasses.replace(first[-1], file=first[0].file,
                                                                         line=first[0].line)
        return location, tuple(first) + tuple(rest)

    def _symbolise(self, address: int, m: ExecMapping | None, trap: bool,
                   return_address: bool) -> tuple[Frame, ...]:
        if m is None:
            return (Frame(address, None),)
        elf = self._elf(m)
        vaddr = None if elf is None else elf.vaddr(address - m.start + m.offset)
        if vaddr is None:
            return (Frame(address, None, file=os.path.basename(m.path)),)
        bias = address - vaddr
        fn = elf.function_at(vaddr)
        if trap and fn is not None:
            prev = _previous_instruction(elf.path, fn[1], vaddr)
            if prev is not None:
                vaddr, address = prev, prev + bias
                fn = elf.function_at(vaddr)
        levels: list[tuple[str | None, str | None, int | None]] = []
        if elf.has_lines:
            a2l = self._a2l.get(elf.lines_path)
            if a2l is None:
                a2l = self._a2l[elf.lines_path] = _Addr2Line(elf.lines_path)
            levels = a2l.lookup(vaddr - 1 if return_address else vaddr)
        file, line = (levels[-1][1], levels[-1][2]) if levels else (None, None)
        inlined = tuple(Frame(address, f or "??", None, fl, ln) for f, fl, ln in levels[:-1])
        if fn is None:
            name = levels[-1][0] if levels else None
            return inlined + (Frame(address, name, None, file or os.path.basename(m.path), line),)
        name, _start, offset = fn
        return inlined + (Frame(address, name, offset, file or os.path.basename(m.path), line),)

    def close(self) -> None:
        with self._lock:
            for a in self._a2l.values():
                a.close()
            self._a2l.clear()

    def __enter__(self) -> CodeMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
