"""smaps, smaps_rollup, maps and numa_maps: the memory map of a process, parsed and read.

Parsers are pure functions of the file text (fixtures captured from real /proc output).
smaps, smaps_rollup and numa_maps walk the target's page tables under its mmap lock when the
kernel writes them; maps does not. Mapped-file names may hold any bytes: the readers decode
them with surrogateescape, so a name that is not UTF-8 survives the round trip. The kernel
writes a newline in a name as ``\\012``, so every line is one mapping.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from dataclasses import fields as _fields

from hftmem_tui.errors import KernelThread, NoSuchProcess, SourceError, ZombieProcess
from hftmem_tui.sources.procfs.core import PROCFS, pid_path, process_alive, read_reused, read_text
from hftmem_tui.sources.procfs.status import read_stat

try:  # the native parser, built by `pip install` (native/pyext/smaps.cpp); Python below otherwise
    from hftmem_tui.sources.procfs._smaps import format_rows as _native_rows
    from hftmem_tui.sources.procfs._smaps import init as _native_init
    from hftmem_tui.sources.procfs._smaps import parse as _native_parse
except ImportError:  # a source checkout without the build: same results, 5-10x the CPU
    _native_parse = _native_rows = _native_init = None

_SMAPS_FIELDS = (
    "size_kb", "rss_kb", "pss_kb", "shared_clean_kb", "shared_dirty_kb", "private_clean_kb",
    "private_dirty_kb", "referenced_kb", "anonymous_kb", "anon_huge_kb", "swap_kb", "locked_kb",
)
# smaps key (as split at ':') -> index into _SMAPS_FIELDS; any other key is ignored.
_SMAPS_KEYS = {
    "Size": 0, "Rss": 1, "Pss": 2, "Shared_Clean": 3, "Shared_Dirty": 4, "Private_Clean": 5,
    "Private_Dirty": 6, "Referenced": 7, "Anonymous": 8, "AnonHugePages": 9, "Swap": 10,
    "Locked": 11,
}
_SPECIAL_KIND = {"[heap]": "heap", "[stack]": "stack", "[vdso]": "vdso"}


@dataclass(frozen=True, slots=True)
class Mapping:
    """One virtual memory area, as in /proc/PID/smaps (or maps, with the kB fields 0)."""

    start: int
    end: int
    perms: str
    offset: int
    dev: str
    inode: int
    path: str
    size_kb: int = 0
    rss_kb: int = 0
    pss_kb: int = 0
    shared_clean_kb: int = 0
    shared_dirty_kb: int = 0
    private_clean_kb: int = 0
    private_dirty_kb: int = 0
    referenced_kb: int = 0
    anonymous_kb: int = 0
    anon_huge_kb: int = 0
    swap_kb: int = 0
    locked_kb: int = 0

    @property
    def dirty_kb(self) -> int:
        """Shared + private dirty: the Dirty column of ``pmap -x``."""
        return self.shared_dirty_kb + self.private_dirty_kb

    @property
    def mode(self) -> str:
        """pmap -x Mode column: rwx, then 's' for shared mappings, then '-' ("rw---", "r--s-")."""
        p = self.perms
        return p[:3] + ("s" if p[3:4] == "s" else "-") + "-"

    @property
    def kind(self) -> str:
        """heap, stack, vdso, special ([vvar], [vsyscall]...), anon, or file."""
        path = self.path
        if not path:
            return "anon"
        if path[0] == "[":
            kind = _SPECIAL_KIND.get(path)
            if kind:
                return kind
            if path.startswith("[stack:"):
                return "stack"
            if path.startswith("[anon"):  # named anonymous memory ([anon:name], [anon_shmem:name])
                return "anon"
            return "special"
        return "file"

    @property
    def name(self) -> str:
        """The Mapping column of ``pmap -x``: basename for files, "[ stack ]", else "[ anon ]"."""
        path = self.path
        slash = path.rfind("/")
        if slash >= 0:
            return path[slash + 1:] or "/"
        return "[ stack ]" if path == "[stack]" else "[ anon ]"


def _make_factory(cls: type) -> object:
    """A positional constructor for a frozen slots dataclass that sets the slots directly.

    The generated frozen ``__init__`` goes through ``object.__setattr__`` per field, which is
    half the cost of parsing a 5,000-mapping smaps; the slot descriptors are twice as fast.
    Same result: the instance is equal to ``cls(*args)`` and still frozen.
    """
    names = [f.name for f in _fields(cls)]
    ns: dict[str, object] = {"_new": object.__new__, "_cls": cls}
    body = ["    self = _new(_cls)"]
    for i, name in enumerate(names):
        ns[f"_set{i}"] = getattr(cls, name).__set__
        body.append(f"    _set{i}(self, {name})")
    src = f"def make({', '.join(names)}):\n" + "\n".join(body) + "\n    return self\n"
    exec(src, ns)  # noqa: S102 - generated from our own field names, like dataclasses does
    return ns["make"]


_new_mapping = _make_factory(Mapping)
# The slots the native parser fills, in its order; a Mapping with other fields keeps to Python.
_NATIVE_FIELDS = ("start", "end", "perms", "offset", "dev", "inode", "path", *_SMAPS_FIELDS)
if _native_init is not None and tuple(f.name for f in _fields(Mapping)) == _NATIVE_FIELDS:
    _native_init(Mapping, _NATIVE_FIELDS)
else:
    _native_parse = _native_rows = None
NATIVE = _native_parse is not None  # whether parse_smaps and pmap_rows run native code


@dataclass(frozen=True, slots=True)
class Rollup:
    """/proc/PID/smaps_rollup totals, in kB."""

    rss_kb: int = 0
    pss_kb: int = 0
    pss_dirty_kb: int = 0
    pss_anon_kb: int = 0
    pss_file_kb: int = 0
    pss_shmem_kb: int = 0
    shared_clean_kb: int = 0
    shared_dirty_kb: int = 0
    private_clean_kb: int = 0
    private_dirty_kb: int = 0
    referenced_kb: int = 0
    anonymous_kb: int = 0
    anon_huge_kb: int = 0
    swap_kb: int = 0
    swap_pss_kb: int = 0
    locked_kb: int = 0


_ROLLUP_KEYS = {
    "Rss": "rss_kb", "Pss": "pss_kb", "Pss_Dirty": "pss_dirty_kb", "Pss_Anon": "pss_anon_kb",
    "Pss_File": "pss_file_kb", "Pss_Shmem": "pss_shmem_kb", "Shared_Clean": "shared_clean_kb",
    "Shared_Dirty": "shared_dirty_kb", "Private_Clean": "private_clean_kb",
    "Private_Dirty": "private_dirty_kb", "Referenced": "referenced_kb",
    "Anonymous": "anonymous_kb", "AnonHugePages": "anon_huge_kb", "Swap": "swap_kb",
    "SwapPss": "swap_pss_kb", "Locked": "locked_kb",
}


@dataclass(frozen=True, slots=True)
class NumaNode:
    """Pages of the target resident on one NUMA node (summed over numa_maps lines)."""

    node: int
    pages: int
    kb: int
    anon_pages: int
    mappings: int


def _header(line: str) -> list:
    """Split a maps/smaps header line into [start, end, perms, offset, dev, inode, path]."""
    parts = line.split(None, 5)
    start, _, end = parts[0].partition("-")
    path = parts[5] if len(parts) > 5 else ""
    return [int(start, 16), int(end, 16), parts[1], int(parts[2], 16), parts[3], int(parts[4]), path]


def parse_smaps(text: str | bytes | memoryview) -> tuple[Mapping, ...]:
    """Parse /proc/PID/smaps text (str, or the file's bytes) into one Mapping per area
    (unknown keys ignored, missing = 0). Raises ValueError on a counter that is not a number.

    The native parser takes the kernel's exact layout and returns None on anything else; then
    (or without the native build) the Python parser decides, with the same results.
    """
    if _native_parse is not None:
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        got = _native_parse(data)
        if got is not None:
            return got
    if not isinstance(text, str):
        text = str(text, "utf-8", "surrogateescape")
    return parse_smaps_python(text)


def parse_smaps_python(text: str) -> tuple[Mapping, ...]:
    """parse_smaps in Python only: the reference the native parser is tested against.

    The kernel prints the same keys in the same order for every area, so the fast path reads
    each counter as a column (every K-th line) with C-level slicing; any text that breaks that
    layout (hand-edited, truncated, mixed kernels) goes through the line-by-line loop.
    """
    lines = text.split("\n")
    return _parse_smaps_columns(lines) or _parse_smaps_lines(lines)


def pmap_rows(mappings: tuple[Mapping, ...]) -> str:
    """The `pmap -x` rows of ``mappings`` (address, Kbytes, RSS, Dirty, Swap, Mode, Mapping),
    one line each, newline-terminated, as one str (native code when built)."""
    if _native_rows is not None:
        got = _native_rows(mappings)
        if got is not None:
            return got
    return pmap_rows_python(mappings)


def pmap_rows_python(mappings: tuple[Mapping, ...]) -> str:
    """pmap_rows in Python only (the reference for the native formatter)."""
    return "".join([f"{m.start:016x} {m.size_kb:>9} {m.rss_kb:>9} {m.dirty_kb:>9} {m.swap_kb:>7} {m.mode:<5}  "
                    f"{m.name}\n" for m in mappings])


def _is_header(line: str) -> bool:
    sp = line.find(" ")
    return sp > 0 and "-" in line[:sp]


def _parse_smaps_columns(lines: list[str]) -> tuple[Mapping, ...] | None:
    """Fast path; None when the block layout is not uniform."""
    if not lines or not _is_header(lines[0]):
        return None
    k = 1  # lines per block: distance to the second header
    n_lines = len(lines)
    while k < n_lines and lines[k] and not _is_header(lines[k]):
        k += 1
    if lines[-1] == "":
        n_lines -= 1
    if n_lines % k:
        return None
    heads = lines[0:n_lines:k]
    if not all(map(_is_header, heads)):
        return None
    n = len(heads)
    cols: list = [None] * 12
    for i in range(1, k):
        key, sep, _ = lines[i].partition(":")
        idx = _SMAPS_KEYS.get(key)
        if idx is None or not sep:
            continue
        # One C-level join+split per column: tokens are exactly ("Key:", "123", "kB") per line.
        tokens = " ".join(lines[i:n_lines:k]).split()
        if len(tokens) != 3 * n or len(set(tokens[0::3])) != 1:
            return None
        cols[idx] = list(map(int, tokens[1::3]))
    zeros = [0] * n
    cols = [c if c is not None else zeros for c in cols]
    fields = [line.split(None, 5) for line in heads]
    starts, ends = [], []
    for f in fields:
        a, _, b = f[0].partition("-")
        starts.append(int(a, 16))
        ends.append(int(b, 16))
    return tuple(map(
        _new_mapping, starts, ends, [f[1] for f in fields], [int(f[2], 16) for f in fields],
        [f[3] for f in fields], [int(f[4]) for f in fields],
        [f[5] if len(f) > 5 else "" for f in fields], *cols,
    ))


def _parse_smaps_lines(lines: list[str]) -> tuple[Mapping, ...]:
    out: list[Mapping] = []
    append = out.append
    keys = _SMAPS_KEYS.get
    head: list | None = None
    vals = [0] * 12
    for line in lines:
        key, sep, rest = line.partition(":")
        idx = keys(key)
        if idx is not None:
            # "Rss:      8 kB": int() skips the padding; drop the " kB" unit.
            vals[idx] = int(rest[:-3])
            continue
        if not sep or " " not in key:
            continue  # blank line, or a key we do not know (VmFlags, THPeligible, new ones)
        if "-" not in key[: key.index(" ")]:
            continue
        if head is not None:
            append(Mapping(*head, *vals))
            vals = [0] * 12
        head = _header(line)
    if head is not None:
        append(Mapping(*head, *vals))
    return tuple(out)


def parse_maps(text: str) -> tuple[Mapping, ...]:
    """Parse /proc/PID/maps (no page-table walk): Mappings with size_kb set, other kB fields 0."""
    out = []
    for line in text.split("\n"):
        if line:
            h = _header(line)
            out.append(Mapping(*h, size_kb=(h[1] - h[0]) // 1024))
    return tuple(out)


def _kv_kb(text: str, table: dict[str, str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in text.split("\n"):
        key, sep, rest = line.partition(":")
        field = table.get(key)
        if field is not None and sep:
            found[field] = int(rest.split()[0])
    return found


def parse_smaps_rollup(text: str) -> Rollup:
    """Parse /proc/PID/smaps_rollup (the header line is skipped, unknown keys ignored)."""
    return Rollup(**_kv_kb(text, _ROLLUP_KEYS))


def parse_numa_maps(text: str) -> tuple[NumaNode, ...]:
    """Sum the N<node>=<pages> counts of /proc/PID/numa_maps per node, sorted by node."""
    pages: dict[int, int] = {}
    kb: dict[int, int] = {}
    anon: dict[int, int] = {}
    maps: dict[int, int] = {}
    for line in text.split("\n"):
        if not line:
            continue
        tokens = line.split()
        page_kb = 4
        is_anon = False
        counts = []
        for tok in tokens[2:]:
            key, _, val = tok.partition("=")
            if key[:1] == "N" and key[1:].isdigit():
                counts.append((int(key[1:]), int(val)))
            elif key == "kernelpagesize_kB":
                page_kb = int(val)
            elif key == "anon":
                is_anon = True
        for node, n in counts:
            pages[node] = pages.get(node, 0) + n
            kb[node] = kb.get(node, 0) + n * page_kb
            anon[node] = anon.get(node, 0) + (n if is_anon else 0)
            maps[node] = maps.get(node, 0) + 1
    return tuple(NumaNode(node, pages[node], kb[node], anon[node], maps[node]) for node in sorted(pages))


# --------------------------------------------------------------------------- readers

def _why_empty(pid: int, procfs: str) -> SourceError:
    """An empty memory file means: zombie, kernel thread, or the process is gone."""
    try:
        st = read_stat(pid, procfs)
    except NoSuchProcess as e:
        return e
    if st.state in ("Z", "X"):
        return ZombieProcess(pid)
    if st.is_kernel_thread:
        return KernelThread(pid)
    return NoSuchProcess(pid, "exited while reading")


def _read_memory_file(pid: int, name: str, procfs: str) -> str:
    text = read_text(pid, name, procfs)
    if not text:
        raise _why_empty(pid, procfs)
    return text


def read_smaps(pid: int, procfs: str = PROCFS) -> tuple[Mapping, ...]:
    """Every mapping with its smaps counters. Walks page tables: costly, read slowly.

    Raises NoSuchProcess, AccessDenied, ZombieProcess, KernelThread.
    """
    # The bytes, in a buffer reused from read to read: the native parser decodes only the paths.
    with read_reused(pid, "smaps", procfs) as data:
        if not data:
            raise _why_empty(pid, procfs)
        return parse_smaps(data)


def read_smaps_rollup(pid: int, procfs: str = PROCFS) -> Rollup:
    """smaps totals (one walk, no per-mapping text). Raises like read_smaps."""
    return parse_smaps_rollup(_read_memory_file(pid, "smaps_rollup", procfs))


def read_maps(pid: int, procfs: str = PROCFS) -> tuple[Mapping, ...]:
    """Mappings without counters (no page-table walk). Raises like read_smaps."""
    return parse_maps(_read_memory_file(pid, "maps", procfs))


def read_numa_maps(pid: int, procfs: str = PROCFS) -> tuple[NumaNode, ...] | None:
    """Per-node page totals, or None when the kernel has no NUMA support (no numa_maps file).

    Walks page tables like smaps. Raises NoSuchProcess, AccessDenied, ZombieProcess, KernelThread.
    """
    if not os.path.exists(pid_path(pid, "numa_maps", procfs)):
        if not process_alive(pid, procfs):
            raise NoSuchProcess(pid)
        return None
    return parse_numa_maps(_read_memory_file(pid, "numa_maps", procfs))
