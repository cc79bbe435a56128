"""What to probe: the symbol, in the file the target really maps, behind each allocation function.

libc's malloc, free, calloc and realloc; operator new/delete where the target's dynamic linker
binds them (the executable itself when it replaces them, else the libstdc++ it maps). Each file
is read where its device+inode are the mapping's (through ``/proc/PID/root`` for a process in
another mount namespace): a different file at the same path is never probed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from hftmem_tui.errors import SourceError
from hftmem_tui.sources import procfs
from hftmem_tui.sources.codemap import open_path, read_exec_mappings
from hftmem_tui.sources.perf.uprobes import is_libc, probe_offsets

__all__ = ["ALLOC_FUNCTIONS", "CXX_FUNCTIONS", "LIBC_FUNCTIONS", "ProbeSpec", "plan_alloc_probes"]

# (function shown to the user, symbols that implement it). C++ operators list every variant the
# compiler may call (sized delete, nothrow new); they add up under one name.
LIBC_FUNCTIONS = (("malloc", ("malloc",)), ("free", ("free",)), ("calloc", ("calloc",)),
                  ("realloc", ("realloc",)))
CXX_FUNCTIONS = (
    ("new", ("_Znwm", "_ZnwmRKSt9nothrow_t")),
    ("new[]", ("_Znam", "_ZnamRKSt9nothrow_t")),
    ("delete", ("_ZdlPv", "_ZdlPvm", "_ZdlPvRKSt9nothrow_t")),
    ("delete[]", ("_ZdaPv", "_ZdaPvm", "_ZdaPvRKSt9nothrow_t")),
)
ALLOC_FUNCTIONS = tuple(name for name, _ in LIBC_FUNCTIONS + CXX_FUNCTIONS)


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """One uprobe to define: ``symbol`` at file ``offset`` of ``path``, counted as ``function``."""

    function: str  # "malloc", "new", ... (ALLOC_FUNCTIONS)
    symbol: str  # as linked: "malloc", "_Znwm"
    path: str  # the ELF file the target maps, as we open it (/proc/PID/root/... in a container)
    offset: int  # file offset of the symbol (uprobes take file offsets)
    where: str  # "libc", "libstdc++", "executable"
    mapped_as: str = ""  # its path in /proc/PID/maps when that differs from ``path``

    @property
    def event(self) -> str:
        """The uprobe's event name in tracefs (the symbol, with what tracefs refuses made ``_``)."""
        return re.sub(r"[^A-Za-z0-9_]", "_", self.symbol)


def _mapped_files(pid: int) -> dict[str, str]:
    """maps path -> a path that opens that very file (files found nowhere with their identity left out)."""
    seen: dict[str, str] = {}
    for m in read_exec_mappings(pid):
        if m.path not in seen:
            opened = open_path(pid, m)
            if opened is not None:
                seen[m.path] = opened
    return seen


def _exe_path(pid: int) -> str | None:
    try:
        return procfs.read_link(pid, "exe").removesuffix(" (deleted)")
    except SourceError:
        return None  # a kernel thread, or gone: plan_alloc_probes' maps read says which


def _specs(function: str, symbols: tuple[str, ...], offsets: dict[str, int], path: str,
           where: str, files: dict[str, str]) -> list[ProbeSpec]:
    opened = files.get(path, path)
    return [ProbeSpec(function, sym, opened, offsets[sym], where, path if opened != path else "")
            for sym in symbols if sym in offsets]


def _all_symbols(functions: tuple[tuple[str, tuple[str, ...]], ...]) -> list[str]:
    return [sym for _, symbols in functions for sym in symbols]


def plan_alloc_probes(pid: int) -> tuple[list[ProbeSpec], list[str]]:
    """Which symbol in which mapped file implements each allocation function, and notes for the
    ones that cannot be probed (one line each). Raises NoSuchProcess."""
    files = _mapped_files(pid)
    exe = _exe_path(pid)
    exe = exe if exe in files else None  # not mapped as itself (gone, or replaced at that path)
    libc = next((p for p in files if is_libc(p)), None)
    libstdcxx = next((p for p in files if "/libstdc++.so" in p), None)
    specs: list[ProbeSpec] = []
    notes: list[str] = []
    if libc is None:
        notes.append("no libc mapped: malloc/free/calloc/realloc not probed")
    else:
        offsets = probe_offsets(files[libc], _all_symbols(LIBC_FUNCTIONS))
        for function, symbols in LIBC_FUNCTIONS:
            found = _specs(function, symbols, offsets, libc, "libc", files)
            if not found:
                notes.append(f"{os.path.basename(libc)} has no symbol '{symbols[0]}': {function} not probed")
            specs += found
    cxx = _all_symbols(CXX_FUNCTIONS)
    exe_offsets = probe_offsets(files[exe], cxx) if exe else {}
    std_offsets = probe_offsets(files[libstdcxx], cxx) if libstdcxx else {}
    for function, symbols in CXX_FUNCTIONS:
        # The dynamic linker binds operator new/delete to the executable's own definition when it
        # replaces them (the demo engine does, to count hot-path allocations): probe that one.
        found = _specs(function, symbols, exe_offsets, exe, "executable", files) if exe else []
        if not found and libstdcxx is None:
            notes.append(f"no libstdc++ mapped: operator {function} not probed")
            continue
        if not found:
            found = _specs(function, symbols, std_offsets, libstdcxx, "libstdc++", files)
            if not found:
                notes.append(f"{os.path.basename(libstdcxx)} has no symbol '{symbols[0]}': operator {function} "
                             "not probed")
        specs += found
    return specs, notes
