"""Allocation counters on a running process through uprobes: no ptrace, opt-in, always removed.

We define uprobes on the allocator entry points the target really calls — libc's malloc, free,
calloc, realloc, and operator new/delete where the target's dynamic linker binds them (the
executable itself when it replaces them, else the libstdc++ it maps) — in a tracefs group named
after this session (``hftmem_<our pid>``), then open one *counting* perf event per (thread,
probe). A perf event bound to a task installs the breakpoint in that process only: other
processes mapping the same libc pay nothing, and the counts are exact per thread.

Each probed call costs the target a trap (a few us in this VM, measured by
:func:`cost_per_call`), which is why this is opt-in and why call chains are only sampled on the
threads the user marked hot, and only briefly.

Cleanup: closing the perf events (even by the kernel when we are SIGKILLed) unhooks the target
at once; the probe *definitions* left in tracefs are removed by us on close, by a guardian
process when we die without closing, and by the next session (groups of dead sessions).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from hftmem_tui.sources.codemap import CodeMap, ElfFunctions, read_exec_mappings
from hftmem_tui.errors import AccessDenied, NoSuchProcess, ProbeError, SourceError, TracefsMissing
from hftmem_tui.sources.paths import cache_root
from hftmem_tui.sources.perf.abi import (
    _CONTEXT_MAX, _F_DISABLED, _F_EXCLUDE_CALLCHAIN_KERNEL, _IOC_ENABLE, _IOC_SET_OUTPUT, _REC_SAMPLE,
    PERF_REG_X86_SP, PERF_TYPE_TRACEPOINT, SAMPLE_CALLCHAIN, SAMPLE_IP, SAMPLE_REGS_USER, SAMPLE_STACK_USER,
    SAMPLE_TID, SAMPLE_TIME, Attr, Ring, ioctl, map_ring, perf_event_open, read_count,
)
from hftmem_tui.sources.watchpoint import Frame

__all__ = [
    "GROUP_PREFIX",
    "ALLOC_FUNCTIONS",
    "ProbeSpec",
    "Offender",
    "AllocProbes",
    "find_tracefs",
    "list_session_probes",
    "remove_group",
    "remove_stale_groups",
    "plan_alloc_probes",
    "thread_cpu_ticks",
    "cost_per_call",
]

GROUP_PREFIX = "hftmem_"
TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")

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


# ------------------------------------------------------------------ tracefs and probe groups

def _mounted_tracefs() -> list[str]:
    try:
        with open("/proc/self/mounts") as f:
            return [ln.split()[1] for ln in f if ln.split()[2:3] == ["tracefs"]]
    except OSError:
        return []


def find_tracefs(candidates: tuple[str, ...] | None = None) -> str:
    """The tracefs directory holding ``uprobe_events`` (mounted ones first, then the usual places).

    Touching /sys/kernel/tracing automounts tracefs on most kernels. Raises TracefsMissing,
    AccessDenied (not root).
    """
    for d in candidates if candidates is not None else (*_mounted_tracefs(), *TRACEFS_CANDIDATES):
        path = os.path.join(d, "uprobe_events")
        try:
            os.stat(path)
        except PermissionError:
            raise AccessDenied(None, path, "uprobes need root (CAP_SYS_ADMIN) to define") from None
        except OSError:
            continue
        return d
    raise TracefsMissing("tracefs is not mounted (no uprobe_events under /sys/kernel/tracing or "
                         "/sys/kernel/debug/tracing): mount -t tracefs nodev /sys/kernel/tracing")


def _events_file(tracefs: str) -> str:
    return os.path.join(tracefs, "uprobe_events")


def list_session_probes(tracefs: str | None = None, group: str | None = None) -> list[str]:
    """Lines of uprobe_events that belong to hftmem sessions (or to one ``group``)."""
    tracefs = tracefs or find_tracefs()
    try:
        with open(_events_file(tracefs)) as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise ProbeError(f"cannot read {_events_file(tracefs)}: {exc.strerror}") from None
    out = []
    for ln in lines:
        name = ln.split(maxsplit=1)[0].split(":", 1)[-1] if ln.strip() else ""
        grp = name.split("/", 1)[0]
        if grp.startswith(GROUP_PREFIX) and (group is None or grp == group):
            out.append(ln)
    return out


def _write_events(tracefs: str, line: str) -> None:
    # O_APPEND, never O_TRUNC: truncating uprobe_events would delete every probe on the machine.
    fd = os.open(_events_file(tracefs), os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def remove_group(group: str, tracefs: str | None = None) -> int:
    """Remove every probe of ``group``; returns how many. Raises ProbeError if one is still in use."""
    tracefs = tracefs or find_tracefs()
    removed = 0
    busy = []
    for ln in list_session_probes(tracefs, group):
        event = ln.split(maxsplit=1)[0].split(":", 1)[-1]
        try:
            _write_events(tracefs, f"-:{event}")
            removed += 1
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                busy.append(event)
            elif exc.errno != errno.ENOENT:
                raise ProbeError(f"cannot remove uprobe {event}: {exc.strerror}") from None
    if busy:
        raise ProbeError(f"uprobes still in use, not removed: {', '.join(busy)}")
    return removed


def _group_owner(group: str) -> int | None:
    m = re.fullmatch(rf"{GROUP_PREFIX}(\d+)", group)
    return int(m.group(1)) if m else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_groups(tracefs: str | None = None) -> list[str]:
    """Remove the probe groups of hftmem sessions that are gone; returns the groups removed."""
    tracefs = tracefs or find_tracefs()
    groups = {ln.split(maxsplit=1)[0].split(":", 1)[-1].split("/", 1)[0] for ln in list_session_probes(tracefs)}
    done = []
    for g in sorted(groups):
        owner = _group_owner(g)
        if owner is not None and owner != os.getpid() and _alive(owner):
            continue
        with contextlib.suppress(ProbeError):
            remove_group(g, tracefs)
            done.append(g)
    return done


# The guardian outlives a SIGKILLed session: it waits for EOF on its stdin (our end of the pipe,
# closed by the kernel when we die), then removes our group. Self-contained: no imports of ours.
_GUARDIAN = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
group, path = sys.argv[1], sys.argv[2]
try:
    sys.stdin.buffer.read()
except BaseException:
    pass
for _ in range(100):
    try:
        with open(path) as f:
            mine = [l.split()[0].split(':', 1)[1] for l in f.read().splitlines()
                    if l.split() and l.split()[0].split(':', 1)[-1].split('/', 1)[0] == group]
    except OSError:
        break
    if not mine:
        break
    for ev in mine:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            os.write(fd, ('-:' + ev + '\n').encode())
            os.close(fd)
        except OSError:
            pass
    time.sleep(0.05)  # EBUSY until the kernel has released the dead session's perf events
"""


# ------------------------------------------------------------------ what to probe

@dataclass(frozen=True, slots=True)
class ProbeSpec:
    function: str  # "malloc", "new", ... (ALLOC_FUNCTIONS)
    symbol: str  # as linked: "malloc", "_Znwm"
    path: str  # the ELF file the target maps
    offset: int  # file offset of the symbol (uprobes take file offsets)
    where: str  # "libc", "libstdc++", "executable"

    @property
    def event(self) -> str:
        return re.sub(r"[^A-Za-z0-9_]", "_", self.symbol)


def _mapped_files(pid: int) -> list[str]:
    seen = []
    for m in read_exec_mappings(pid):
        if m.path not in seen:
            seen.append(m.path)
    return seen


def plan_alloc_probes(pid: int) -> tuple[list[ProbeSpec], list[str]]:
    """Which symbol in which mapped file implements each allocation function, and notes for the
    ones that cannot be probed (one line each). Raises NoSuchProcess."""
    files = _mapped_files(pid)
    exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)") if os.path.exists(f"/proc/{pid}/exe") else None
    libc = next((p for p in files if re.search(r"/libc[.-][^/]*so", p)), None)
    libstdcxx = next((p for p in files if "/libstdc++.so" in p), None)
    specs: list[ProbeSpec] = []
    notes: list[str] = []

    def add(function: str, symbols: tuple[str, ...], path: str, where: str) -> bool:
        elf = ElfFunctions(path)
        found = False
        for sym in symbols:
            vaddr = elf.by_name.get(sym)
            off = elf.file_offset(vaddr) if vaddr else None
            if off is not None:
                specs.append(ProbeSpec(function, sym, path, off, where))
                found = True
        return found

    if libc is None:
        notes.append("no libc mapped: malloc/free/calloc/realloc not probed")
    else:
        for function, symbols in LIBC_FUNCTIONS:
            if not add(function, symbols, libc, "libc"):
                notes.append(f"{os.path.basename(libc)} has no symbol '{symbols[0]}': {function} not probed")
    exe_elf = ElfFunctions(exe) if exe else None
    for function, symbols in CXX_FUNCTIONS:
        # The dynamic linker binds operator new/delete to the executable's own definition when it
        # replaces them (the demo engine does, to count hot-path allocations): probe that one.
        if exe_elf and any(s in exe_elf.by_name for s in symbols) and add(function, symbols, exe, "executable"):
            continue
        if libstdcxx is None:
            notes.append(f"no libstdc++ mapped: operator {function} not probed")
            continue
        if not add(function, symbols, libstdcxx, "libstdc++"):
            notes.append(f"{os.path.basename(libstdcxx)} has no symbol '{symbols[0]}': operator {function} not probed")
    return specs, notes


# ------------------------------------------------------------------ per-thread CPU

def thread_cpu_ticks(pid: int) -> dict[int, tuple[str, int]]:
    """tid -> (thread name, utime+stime in clock ticks) from /proc/PID/task/*/stat."""
    from hftmem_tui.sources.procfs import parse_stat

    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        raise NoSuchProcess(pid) from None
    for t in tids:
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                st = parse_stat(f.read())
        except (OSError, ValueError):
            continue  # the thread exited between listdir and open
        out[int(t)] = (st.comm, st.utime_ticks + st.stime_ticks)
    return out


# ------------------------------------------------------------------ the session

@dataclass(frozen=True, slots=True)
class Offender:
    """One allocation seen on a hot thread, with its call chain (innermost first)."""

    tid: int
    function: str
    frames: tuple[Frame, ...]
    count: int = 1  # identical chains seen in the sample window


def _tracepoint_attr(config: int, *, sample: bool = False) -> Attr:
    a = Attr()
    a.type = PERF_TYPE_TRACEPOINT
    a.size = 128
    a.config = config
    if sample:
        a.flags = _F_DISABLED | _F_EXCLUDE_CALLCHAIN_KERNEL
        a.sample_period = 1
        a.wakeup_events = 1
        # The call chain from frame pointers starts at the *caller's* frame at a function's entry
        # (the callee has not pushed rbp yet): the 8 bytes at the user sp give the direct caller.
        a.sample_type = SAMPLE_IP | SAMPLE_TID | SAMPLE_TIME | SAMPLE_CALLCHAIN | SAMPLE_REGS_USER | SAMPLE_STACK_USER
        a.sample_regs_user = 1 << PERF_REG_X86_SP
        a.sample_stack_user = 8
        a.sample_max_stack = 32
    return a


class AllocProbes:
    """Per-thread allocation counters on ``pid`` through uprobes. Use as a context manager.

    Raises TracefsMissing, AccessDenied (not root), ProbeError, NoSuchProcess. ``notes`` lists
    functions that could not be probed (one line each); the others still count.
    """

    def __init__(self, pid: int, *, group: str | None = None, guardian: bool = True) -> None:
        self.pid = pid
        self.tracefs = find_tracefs()
        if not os.access(_events_file(self.tracefs), os.W_OK):
            raise AccessDenied(pid, "uprobe_events", "defining uprobes needs root (CAP_SYS_ADMIN)")
        self.group = group or f"{GROUP_PREFIX}{os.getpid()}"
        self.stale_removed = remove_stale_groups(self.tracefs)
        self.specs, self.notes = plan_alloc_probes(pid)
        if not self.specs:
            raise ProbeError(f"nothing to probe in process {pid}: " + "; ".join(self.notes))
        self._fds: dict[tuple[int, str], int] = {}  # (tid, event) -> counting fd
        self._gone: dict[int, dict[str, int]] = {}  # final counts of threads that exited
        self._ids: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._closed = False
        self._lock = threading.Lock()
        self._guardian: subprocess.Popen | None = None
        try:
            if guardian:
                self._start_guardian()
            self._define()
            self.refresh_threads()
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------- setup
    def _start_guardian(self) -> None:
        self._guardian = subprocess.Popen(
            [sys.executable, "-c", _GUARDIAN, self.group, _events_file(self.tracefs)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's SIGINT/SIGHUP to our group must not take it down first
        )

    def _define(self) -> None:
        for spec in self.specs:
            try:
                _write_events(self.tracefs, f"p:{self.group}/{spec.event} {spec.path}:{spec.offset:#x}")
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    continue
                raise ProbeError(f"cannot define a uprobe on {spec.symbol} in {spec.path}: {exc.strerror}") from None
            try:
                with open(os.path.join(self.tracefs, "events", self.group, spec.event, "id")) as f:
                    self._ids[spec.event] = int(f.read())
            except (OSError, ValueError) as exc:
                raise ProbeError(f"uprobe {self.group}/{spec.event} has no event id: {exc}") from None

    def refresh_threads(self) -> dict[int, str]:
        """Open counters on threads created since the last call; keep the counts of exited ones."""
        with self._lock:
            if self._closed:
                return dict(self._names)
            try:
                tids = {int(t) for t in os.listdir(f"/proc/{self.pid}/task")}
            except FileNotFoundError:
                raise NoSuchProcess(self.pid) from None
            for (tid, event), fd in list(self._fds.items()):
                if tid not in tids:
                    with contextlib.suppress(OSError):
                        self._gone.setdefault(tid, {})
                        self._gone[tid][event] = read_count(fd)
                    os.close(fd)
                    del self._fds[(tid, event)]
            for tid in sorted(tids):
                try:
                    with open(f"/proc/{self.pid}/task/{tid}/comm") as f:
                        self._names[tid] = f.read().strip()
                except OSError:
                    continue
                for spec in self.specs:
                    if (tid, spec.event) in self._fds:
                        continue
                    try:
                        fd = perf_event_open(_tracepoint_attr(self._ids[spec.event]), tid, -1)
                    except OSError as exc:
                        if exc.errno == errno.ESRCH:
                            break  # the thread exited
                        if exc.errno in (errno.EACCES, errno.EPERM):
                            raise AccessDenied(self.pid, "uprobe events", "run as root") from None
                        raise ProbeError(f"cannot count {spec.symbol} on thread {tid}: {exc.strerror}") from None
                    self._fds[(tid, spec.event)] = fd
            return dict(self._names)

    # ----------------------------------------------------------- reading
    @property
    def thread_names(self) -> dict[int, str]:
        return dict(self._names)

    def counts(self) -> dict[int, dict[str, int]]:
        """tid -> function -> calls since the probes were armed (exited threads included)."""
        by_event = {s.event: s.function for s in self.specs}
        out: dict[int, dict[str, int]] = {}
        with self._lock:
            for tid, per in self._gone.items():
                for event, n in per.items():
                    f = out.setdefault(tid, {})
                    f[by_event[event]] = f.get(by_event[event], 0) + n
            for (tid, event), fd in self._fds.items():
                try:
                    n = read_count(fd)
                except OSError:
                    continue
                f = out.setdefault(tid, {})
                f[by_event[event]] = f.get(by_event[event], 0) + n
        return out

    def sample_offenders(self, tids: list[int], *, duration: float = 0.5, max_per_function: int = 3,
                         code: CodeMap | None = None) -> list[Offender]:
        """Call chains of the first allocations on ``tids``, sampled for at most ``duration`` s.

        Sampling costs more than counting (a call chain per call), so it runs only on the given
        threads and stops as soon as ``max_per_function`` chains per function are in.
        """
        fds: list[int] = []
        rings: list[Ring] = []
        mms = []
        own_code = code is None
        code = code or CodeMap(self.pid)
        self._entry_points = self._probe_addresses()
        seen: dict[tuple[int, str, tuple[int, ...]], int] = {}
        per_function: dict[str, int] = {}
        try:
            for tid in tids:
                leader = None
                for spec in self.specs:
                    try:
                        fd = perf_event_open(_tracepoint_attr(self._ids[spec.event], sample=True), tid, -1)
                    except OSError:
                        break  # the thread exited
                    fds.append(fd)
                    if leader is None:
                        leader = fd
                        mm = map_ring(fd, 8)
                        mms.append(mm)
                        rings.append(Ring(mm))
                    else:
                        ioctl(fd, _IOC_SET_OUTPUT, leader)
            for fd in fds:
                ioctl(fd, _IOC_ENABLE, 0)
            poller = select.poll()
            for fd in fds:
                poller.register(fd, select.POLLIN)
            start = time.monotonic()
            deadline = start + duration
            last_new, distinct = start, 0
            # Stop once new call chains stop turning up (50 ms without one) or at the deadline.
            while (now := time.monotonic()) < deadline and not (distinct and now - last_new > 0.05):
                poller.poll(max(1, int(min(deadline - now, 0.05) * 1000)))
                for ring in rings:
                    ring.drain(lambda t, _m, p: self._on_sample(t, p, code, seen, per_function, max_per_function))
                if len(seen) > distinct:
                    distinct, last_new = len(seen), time.monotonic()
        finally:
            for mm in mms:
                with contextlib.suppress(BufferError, ValueError):
                    mm.close()
            for fd in fds:
                os.close(fd)
            if own_code:
                code.close()
        return [Offender(tid, fn, frames, n) for (tid, fn, _chain), (n, frames) in seen.items()]

    def _on_sample(self, rtype: int, payload: bytes, code: CodeMap, seen: dict, per_function: dict,
                   max_per_function: int) -> None:
        if rtype != _REC_SAMPLE:
            return
        ip, _pid, tid, _t, nr = struct.unpack_from("<QIIQQ", payload, 0)
        pos = 32
        chain = list(struct.unpack_from(f"<{nr}Q", payload, pos)) if nr else []
        pos += 8 * nr
        abi = struct.unpack_from("<Q", payload, pos)[0]
        pos += 8
        if abi:
            pos += 8  # the one register: sp
        size = struct.unpack_from("<Q", payload, pos)[0]
        pos += 8
        ret = struct.unpack_from("<Q", payload, pos)[0] if size >= 8 else None
        chain = [a for a in chain if a < _CONTEXT_MAX]
        if ret and (len(chain) < 2 or chain[1] != ret):
            chain.insert(1, ret)  # the direct caller, missing from a frame-pointer walk at function entry
        entry = code.frame(ip)
        function = self._entry_points.get(ip) or entry.function or "?"
        if per_function.get(function, 0) >= max_per_function and (tid, function, tuple(chain)) not in seen:
            return
        key = (tid, function, tuple(chain))
        if key not in seen:
            per_function[function] = per_function.get(function, 0) + 1
            frames = (entry,) + tuple(f for a in chain[1:] for f in code.frames(a, return_address=True))
            seen[key] = [0, frames]
        seen[key][0] += 1

    def _probe_addresses(self) -> dict[int, str]:
        """Runtime address of each probed entry point -> function (to name a sample's probe)."""
        out = {}
        maps = read_exec_mappings(self.pid)
        for spec in self.specs:
            for m in maps:
                if m.path == spec.path and m.offset <= spec.offset < m.offset + (m.end - m.start):
                    out[m.start + spec.offset - m.offset] = spec.function
        return out

    # ----------------------------------------------------------- teardown
    def close(self) -> None:
        """Close every counter (unhooks the target at once) and remove this session's probes."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in self._fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._fds.clear()
        try:
            remove_group(self.group, self.tracefs)
        except (ProbeError, SourceError):
            pass  # the guardian retries until the kernel lets go
        if self._guardian is not None:
            with contextlib.suppress(OSError):
                self._guardian.stdin.close()  # EOF: the guardian removes anything left and exits
            try:
                self._guardian.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._guardian.kill()
            self._guardian = None

    def __enter__(self) -> AllocProbes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------ cost per call

def _measure_cost(calls: int = 4000, rounds: int = 3) -> float:
    """Seconds one probed call adds to the caller: a probe on our own libc malloc, timed with
    and without its counting event (the same trap the target pays)."""
    tracefs = find_tracefs()
    group = f"{GROUP_PREFIX}{os.getpid()}"
    libc_path = next((m.path for m in read_exec_mappings(os.getpid()) if re.search(r"/libc[.-][^/]*so", m.path)),
                     None)
    if libc_path is None:
        raise ProbeError("no libc mapped in this process")
    elf = ElfFunctions(libc_path)
    off = elf.file_offset(elf.by_name["malloc"])
    event = "calibrate_malloc"
    libc = ctypes.CDLL(libc_path)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    malloc, free = libc.malloc, libc.free
    _write_events(tracefs, f"p:{group}/{event} {libc_path}:{off:#x}")
    try:
        with open(os.path.join(tracefs, "events", group, event, "id")) as f:
            eid = int(f.read())

        def loop() -> float:
            t = time.perf_counter()
            for _ in range(calls):
                free(malloc(16))
            return time.perf_counter() - t

        best = float("inf")
        for _ in range(rounds):
            base = loop()
            fd = perf_event_open(_tracepoint_attr(eid), 0, -1)
            try:
                before = read_count(fd)
                probed = loop()
                n = read_count(fd) - before
            finally:
                os.close(fd)
            if n:
                best = min(best, max(0.0, probed - base) / n)
        return best if best != float("inf") else 0.0
    finally:
        with contextlib.suppress(OSError):
            _write_events(tracefs, f"-:{group}/{event}")


def cost_per_call(*, refresh: bool = False) -> float | None:
    """Measured cost of one probed call on this machine in seconds (cached per boot); None if unknown."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        boot = "unknown"
    path = cache_root() / "uprobe-cost.json"
    if not refresh:
        try:
            data = json.loads(path.read_text())
            if data.get("boot_id") == boot:
                return float(data["cost_s"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    try:
        cost = _measure_cost()
    except (OSError, SourceError, KeyError):
        return None
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"boot_id": boot, "cost_s": cost}))
    return cost


def _cleanup_main(argv: list[str]) -> int:
    """``python -m hftmem_tui.sources.perf.uprobes [--list|--cleanup]``: the session probes left behind."""
    try:
        if "--cleanup" in argv:
            for g in remove_stale_groups():
                print(f"removed {g}")
        for ln in list_session_probes():
            print(ln)
    except SourceError as exc:
        sys.stderr.write(f"hftmem: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(_cleanup_main(sys.argv[1:]))
