"""/proc readers: smaps, smaps_rollup, maps, status, stat, numa_maps, scheduling.

Parsers (``parse_*``) are pure functions of the file text, tested on fixtures captured from
real /proc output. Readers (``read_*``) take the procfs root as an argument and turn OS errors
into the typed errors of :mod:`hftmem_tui.errors` at this one boundary.

Cost to the target: status and stat are counters (no page-table walk, cheap at any rate);
smaps, smaps_rollup and numa_maps walk the target's page tables under its mmap lock, so the
sampler must read them slowly or on demand. A /proc read is a syscall that cannot be given a
timeout; its cost is bounded by the walk, which the caller measures and schedules.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import fields as _fields
from dataclasses import dataclass

from hftmem_tui.errors import (
    AccessDenied,
    KernelThread,
    NoSuchProcess,
    SourceError,
    ZombieProcess,
)

PROCFS = "/proc"
PF_KTHREAD = 0x00200000
SCHED_RESET_ON_FORK = 0x40000000
PERMISSION_HINT = "run as the same user as the target or as root"

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


# --------------------------------------------------------------------------- dataclasses

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
class Status:
    """/proc/PID/status (the cheap counters: read VmRSS here at the refresh rate)."""

    name: str
    state: str
    tgid: int
    ppid: int
    tracer_pid: int
    uid: int
    vm_peak_kb: int = 0
    vm_size_kb: int = 0
    vm_hwm_kb: int = 0
    vm_rss_kb: int = 0
    rss_anon_kb: int = 0
    rss_file_kb: int = 0
    rss_shmem_kb: int = 0
    vm_swap_kb: int = 0
    vm_lck_kb: int = 0
    vm_pte_kb: int = 0
    threads: int = 0
    voluntary_ctxt_switches: int = 0
    nonvoluntary_ctxt_switches: int = 0
    cpus_allowed_list: str = ""
    has_mm: bool = True       # False when the Vm* lines are absent (kernel thread or zombie)
    kthread: bool | None = None  # the "Kthread:" line (kernels >= 6.x), None when absent

    @property
    def is_zombie(self) -> bool:
        return self.state == "Z"

    @property
    def is_kernel_thread(self) -> bool:
        """From the Kthread line when the kernel prints it, else "no mm and not exiting"."""
        if self.kthread is not None:
            return self.kthread
        return not self.has_mm and self.state not in ("Z", "X")


_STATUS_INT_KB = {
    "VmPeak": "vm_peak_kb", "VmSize": "vm_size_kb", "VmHWM": "vm_hwm_kb", "VmRSS": "vm_rss_kb",
    "RssAnon": "rss_anon_kb", "RssFile": "rss_file_kb", "RssShmem": "rss_shmem_kb",
    "VmSwap": "vm_swap_kb", "VmLck": "vm_lck_kb", "VmPTE": "vm_pte_kb",
}
_STATUS_INT = {
    "Tgid": "tgid", "PPid": "ppid", "TracerPid": "tracer_pid", "Threads": "threads",
    "voluntary_ctxt_switches": "voluntary_ctxt_switches",
    "nonvoluntary_ctxt_switches": "nonvoluntary_ctxt_switches",
}


@dataclass(frozen=True, slots=True)
class Stat:
    """/proc/PID/stat (field numbers from proc(5))."""

    pid: int
    comm: str
    state: str
    ppid: int
    flags: int
    minflt: int
    cminflt: int
    majflt: int
    cmajflt: int
    utime_ticks: int
    stime_ticks: int
    nice: int
    num_threads: int
    starttime_ticks: int
    vsize_bytes: int
    rss_pages: int
    processor: int
    rt_priority: int
    policy: int

    @property
    def is_kernel_thread(self) -> bool:
        return bool(self.flags & PF_KTHREAD)

    @property
    def is_zombie(self) -> bool:
        return self.state == "Z"


SCHED_POLICIES = {0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR", 3: "SCHED_BATCH",
                  5: "SCHED_IDLE", 6: "SCHED_DEADLINE"}


@dataclass(frozen=True, slots=True)
class SchedInfo:
    """Scheduling of the target: an HFT engine usually pins threads and may run SCHED_FIFO."""

    policy: str
    rt_priority: int
    nice: int
    affinity: frozenset[int]


@dataclass(frozen=True, slots=True)
class NumaNode:
    """Pages of the target resident on one NUMA node (summed over numa_maps lines)."""

    node: int
    pages: int
    kb: int
    anon_pages: int
    mappings: int


# --------------------------------------------------------------------------- parsers

def _header(line: str) -> list:
    """Split a maps/smaps header line into [start, end, perms, offset, dev, inode, path]."""
    parts = line.split(None, 5)
    start, _, end = parts[0].partition("-")
    path = parts[5] if len(parts) > 5 else ""
    return [int(start, 16), int(end, 16), parts[1], int(parts[2], 16), parts[3], int(parts[4]), path]


def parse_smaps(text: str) -> tuple[Mapping, ...]:
    """Parse /proc/PID/smaps text into one Mapping per area (unknown keys ignored, missing = 0).

    The kernel prints the same keys in the same order for every area, so the fast path reads
    each counter as a column (every K-th line) with C-level slicing; any text that breaks that
    layout (hand-edited, truncated, mixed kernels) goes through the line-by-line loop.
    """
    lines = text.split("\n")
    return _parse_smaps_columns(lines) or _parse_smaps_lines(lines)


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


def parse_status(text: str) -> Status:
    """Parse /proc/PID/status. Raises ValueError if Name/State are missing (not a status file)."""
    fields: dict[str, object] = {}
    has_mm = False
    kthread: bool | None = None
    for line in text.split("\n"):
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        if key in _STATUS_INT_KB:
            fields[_STATUS_INT_KB[key]] = int(rest.split()[0])
            has_mm = True
        elif key in _STATUS_INT:
            fields[_STATUS_INT[key]] = int(rest)
        elif key == "Name":
            fields["name"] = rest.strip()
        elif key == "State":
            fields["state"] = rest.strip()[:1]
        elif key == "Uid":
            fields["uid"] = int(rest.split()[0])
        elif key == "Cpus_allowed_list":
            fields["cpus_allowed_list"] = rest.strip()
        elif key == "Kthread":
            kthread = rest.strip() == "1"
    if "name" not in fields or "state" not in fields:
        raise ValueError("not a /proc/PID/status text (no Name or State line)")
    fields.setdefault("tgid", 0)
    fields.setdefault("ppid", 0)
    fields.setdefault("tracer_pid", 0)
    fields.setdefault("uid", -1)
    return Status(**fields, has_mm=has_mm, kthread=kthread)  # type: ignore[arg-type]


def parse_stat(text: str) -> Stat:
    """Parse /proc/PID/stat; comm may hold spaces and ')', so split at the LAST ')'."""
    lpar = text.index("(")
    rpar = text.rindex(")")
    f = text[rpar + 2:].split()  # f[0] is field 3 (state): field n is f[n - 3]
    return Stat(
        pid=int(text[:lpar]), comm=text[lpar + 1:rpar], state=f[0], ppid=int(f[1]),
        flags=int(f[6]), minflt=int(f[7]), cminflt=int(f[8]), majflt=int(f[9]),
        cmajflt=int(f[10]), utime_ticks=int(f[11]), stime_ticks=int(f[12]), nice=int(f[16]),
        num_threads=int(f[17]), starttime_ticks=int(f[19]), vsize_bytes=int(f[20]),
        rss_pages=int(f[21]), processor=int(f[36]), rt_priority=int(f[37]),
        policy=int(f[38]) & ~SCHED_RESET_ON_FORK,
    )


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

def _pid_path(pid: int, name: str, procfs: str) -> str:
    return f"{procfs}/{pid}/{name}"


def read_text(pid: int, name: str, procfs: str = PROCFS) -> str:
    """Read /proc/PID/<name> as text.

    Raises NoSuchProcess (no such pid, or it exited while we read), AccessDenied (another
    user's process), SourceError (any other OS error, one line).
    """
    path = _pid_path(pid, name, procfs)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError) as e:
        raise NoSuchProcess(pid) from e
    except PermissionError as e:
        raise AccessDenied(pid, path.removeprefix(f"{procfs}/{pid}/"), PERMISSION_HINT) from e
    except OSError as e:
        if e.errno == errno.ESRCH:
            raise NoSuchProcess(pid) from e
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
    # Paths may hold bytes that are not UTF-8: keep them round-trippable.
    return data.decode("utf-8", "surrogateescape")


def read_stat(pid: int, procfs: str = PROCFS) -> Stat:
    """/proc/PID/stat. Raises NoSuchProcess, AccessDenied."""
    text = read_text(pid, "stat", procfs)
    if not text:
        raise NoSuchProcess(pid, "exited while reading")
    return parse_stat(text)


def read_status(pid: int, procfs: str = PROCFS) -> Status:
    """/proc/PID/status. Raises NoSuchProcess, AccessDenied."""
    text = read_text(pid, "status", procfs)
    if not text:
        raise NoSuchProcess(pid, "exited while reading")
    return parse_status(text)


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
    return parse_smaps(_read_memory_file(pid, "smaps", procfs))


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
    if not os.path.exists(_pid_path(pid, "numa_maps", procfs)):
        if not os.path.isdir(f"{procfs}/{pid}"):
            raise NoSuchProcess(pid)
        return None
    return parse_numa_maps(_read_memory_file(pid, "numa_maps", procfs))


def read_sched(pid: int, procfs: str = PROCFS) -> SchedInfo:
    """Policy, RT priority, nice and CPU affinity. Raises NoSuchProcess, AccessDenied."""
    st = read_stat(pid, procfs)
    try:
        try:
            policy = os.sched_getscheduler(pid)
            rt_priority = os.sched_getparam(pid).sched_priority
        except OSError as e:
            if e.errno != errno.EINVAL:  # SCHED_DEADLINE tasks refuse the old API: use stat
                raise
            policy, rt_priority = st.policy, st.rt_priority
        affinity = frozenset(os.sched_getaffinity(pid))
    except ProcessLookupError as e:
        raise NoSuchProcess(pid) from e
    except PermissionError as e:
        raise AccessDenied(pid, "scheduling parameters", PERMISSION_HINT) from e
    policy &= ~SCHED_RESET_ON_FORK
    return SchedInfo(SCHED_POLICIES.get(policy, f"policy {policy}"), rt_priority, st.nice, affinity)


def check_target(pid: int, procfs: str = PROCFS) -> Status:
    """Check that pid is a live user process whose memory we may read; return its status.

    Raises NoSuchProcess, KernelThread, ZombieProcess, or AccessDenied (cannot open smaps).
    Opening smaps_rollup checks ptrace read access without walking page tables (no read).
    """
    if pid <= 0:
        raise NoSuchProcess(pid, "pids are positive")
    st = read_stat(pid, procfs)
    if st.is_kernel_thread:
        raise KernelThread(pid)
    if st.state in ("Z", "X"):
        raise ZombieProcess(pid)
    status = read_status(pid, procfs)
    path = _pid_path(pid, "smaps_rollup", procfs)
    try:
        with open(path, "rb"):
            pass
    except (FileNotFoundError, ProcessLookupError) as e:
        raise NoSuchProcess(pid) from e
    except PermissionError as e:
        raise AccessDenied(pid, "smaps", PERMISSION_HINT) from e
    except OSError as e:
        raise SourceError(f"cannot open {path}: {e.strerror or e}") from e
    if status.state == "Z":  # became a zombie between the two reads
        raise ZombieProcess(pid)
    return status


# --------------------------------------------------------------------------- tasks, links, system

def list_tasks(pid: int, procfs: str = PROCFS) -> tuple[int, ...]:
    """Thread ids of pid, sorted (/proc/PID/task). Raises NoSuchProcess, AccessDenied, SourceError."""
    path = _pid_path(pid, "task", procfs)
    try:
        names = os.listdir(path)
    except (FileNotFoundError, ProcessLookupError) as e:
        raise NoSuchProcess(pid) from e
    except PermissionError as e:
        raise AccessDenied(pid, "task", PERMISSION_HINT) from e
    except OSError as e:
        raise SourceError(f"cannot list {path}: {e.strerror or e}") from e
    return tuple(sorted(int(n) for n in names if n.isdigit()))


def task_alive(pid: int, tid: int, procfs: str = PROCFS) -> bool:
    """Whether thread tid of pid still has a /proc entry (a zombie leader keeps its entry)."""
    return os.path.exists(_pid_path(pid, f"task/{tid}", procfs))


def process_alive(pid: int, procfs: str = PROCFS) -> bool:
    """Whether pid has a /proc entry (a zombie still has one: see read_stat's state)."""
    return os.path.isdir(f"{procfs}/{pid}")


def read_task_stat(pid: int, tid: int, procfs: str = PROCFS) -> Stat:
    """/proc/PID/task/TID/stat. Raises NoSuchProcess (thread or process gone), AccessDenied."""
    text = read_text(pid, f"task/{tid}/stat", procfs)
    if not text:
        raise NoSuchProcess(pid, f"thread {tid} exited while reading")
    return parse_stat(text)


def read_comm(pid: int, tid: int | None = None, procfs: str = PROCFS) -> str:
    """The command name of pid (or of its thread tid), decoded losslessly (surrogateescape).

    Raises NoSuchProcess, AccessDenied.
    """
    name = "comm" if tid is None else f"task/{tid}/comm"
    return read_text(pid, name, procfs).removesuffix("\n")


def read_link(pid: int, name: str, procfs: str = PROCFS) -> str:
    """readlink of /proc/PID/<name> (exe, cwd, root, fd/N), decoded losslessly.

    Raises NoSuchProcess, AccessDenied, SourceError.
    """
    path = _pid_path(pid, name, procfs)
    try:
        return os.fsdecode(os.readlink(os.fsencode(path)))
    except (FileNotFoundError, ProcessLookupError) as e:
        raise NoSuchProcess(pid) from e
    except PermissionError as e:
        raise AccessDenied(pid, name, PERMISSION_HINT) from e
    except OSError as e:
        raise SourceError(f"cannot read link {path}: {e.strerror or e}") from e


def exe_identity(pid: int, procfs: str = PROCFS) -> tuple[str, int, int]:
    """(path without " (deleted)", st_dev, st_ino) of the file /proc/PID/exe points at.

    The device and inode identify the file even when the path is reused or only exists in
    another mount namespace. Raises NoSuchProcess, AccessDenied, SourceError.
    """
    path = read_link(pid, "exe", procfs).removesuffix(" (deleted)")
    link = _pid_path(pid, "exe", procfs)
    try:
        st = os.stat(link)
    except (FileNotFoundError, ProcessLookupError) as e:
        raise NoSuchProcess(pid) from e
    except PermissionError as e:
        raise AccessDenied(pid, "exe", PERMISSION_HINT) from e
    except OSError as e:
        raise SourceError(f"cannot stat {link}: {e.strerror or e}") from e
    return path, st.st_dev, st.st_ino


def read_system(name: str, procfs: str = PROCFS) -> str | None:
    """A system-wide /proc file (``sys/kernel/perf_event_paranoid``, ``meminfo``, ``self/status``),
    stripped; None when it does not exist or cannot be read (a kernel without that feature)."""
    try:
        with open(f"{procfs}/{name}", "rb") as f:
            return f.read().decode("utf-8", "surrogateescape").strip()
    except OSError:
        return None


def read_system_int(name: str, procfs: str = PROCFS) -> int | None:
    """A system-wide /proc file holding one integer (ptrace_scope, perf_event_paranoid), or None
    when it is missing or not an integer."""
    text = read_system(name, procfs)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def boot_id(procfs: str = PROCFS) -> str:
    """This boot's id (sys/kernel/random/boot_id), "" when unavailable: keys per-boot caches."""
    return read_system("sys/kernel/random/boot_id", procfs) or ""


def own_cap_effective(procfs: str = PROCFS) -> int:
    """hftmem's own effective capability mask (CapEff of /proc/self/status), 0 when unreadable."""
    for line in (read_system("self/status", procfs) or "").split("\n"):
        if line.startswith("CapEff:"):
            try:
                return int(line.split(":", 1)[1].strip(), 16)
            except ValueError:
                return 0
    return 0


def own_mounts(procfs: str = PROCFS) -> tuple[tuple[str, str, str], ...]:
    """(device, mount point, fs type) of each line of /proc/self/mounts (octal escapes decoded)."""
    out = []
    for line in (read_system("self/mounts", procfs) or "").split("\n"):
        parts = line.split()
        if len(parts) >= 3:
            out.append(tuple(_unescape_mount(p) for p in parts[:3]))
    return tuple(out)


def _unescape_mount(field: str) -> str:
    # /proc/self/mounts writes space, tab, newline and backslash as \040 \011 \012 \134.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def set_oom_score_adj(pid: int, value: int, procfs: str = PROCFS) -> None:
    """Write /proc/PID/oom_score_adj (for our own children, e.g. gdb). Raises SourceError."""
    path = _pid_path(pid, "oom_score_adj", procfs)
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except (FileNotFoundError, ProcessLookupError) as e:
        raise NoSuchProcess(pid) from e
    except OSError as e:
        raise SourceError(f"cannot write {path}: {e.strerror or e}") from e
