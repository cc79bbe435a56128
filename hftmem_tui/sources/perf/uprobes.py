"""Uprobes on a running process: tracefs definitions in a session group and their perf events.

A uprobe is defined in tracefs (``uprobe_events``) on a file offset of an ELF file, in a group
named after this session (``hftmem_<our pid>``); nothing fires until a perf event of that
tracepoint is opened on a task. A perf event bound to a task installs the breakpoint in that
process only: other processes mapping the same file pay nothing, and counts are exact per thread.
What to probe and how to read the counts is the allocation-probe feature (hftmem_tui/probes/).

Cleanup: closing the perf events (even by the kernel when we are SIGKILLed) unhooks the target
at once; the probe *definitions* left in tracefs are removed by us on close, by a guardian
process (uprobe_guardian.py) when we die without closing, and by the next session (groups of
dead sessions). ``python -m hftmem_tui.sources.perf.uprobes [--cleanup]`` lists (and removes)
what sessions left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import signal
import struct
import subprocess
import sys
from collections.abc import Iterable, Iterator

from hftmem_tui.errors import AccessDenied, ProbeError, SourceError, TracefsMissing
from hftmem_tui.sources import procfs
from hftmem_tui.sources.codemap import ElfFunctions
from hftmem_tui.sources.perf import uprobe_guardian
from hftmem_tui.sources.perf.abi import (
    CONTEXT_MAX, F_DISABLED, F_EXCLUDE_CALLCHAIN_KERNEL, PERF_REG_X86_SP, PERF_TYPE_TRACEPOINT, SAMPLE_CALLCHAIN,
    SAMPLE_IP, SAMPLE_REGS_USER, SAMPLE_STACK_USER, SAMPLE_TID, SAMPLE_TIME, Attr, perf_event_open,
)

__all__ = [
    "GROUP_PREFIX",
    "UprobeGroup",
    "decode_call_sample",
    "define_probe",
    "find_tracefs",
    "is_libc",
    "list_session_probes",
    "open_counter",
    "open_sampler",
    "probe_offset",
    "probe_offsets",
    "remove_group",
    "remove_probe",
    "remove_stale_groups",
    "session_group",
    "signals_deferred",
]

GROUP_PREFIX = "hftmem_"
TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
_LIBC = re.compile(r"/libc[.-][^/]*so")


# ------------------------------------------------------------------ tracefs and probe groups

def _mounted_tracefs() -> list[str]:
    return [mountpoint for _dev, mountpoint, fstype in procfs.own_mounts() if fstype == "tracefs"]


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


def _event_of(line: str) -> str:
    """``group/event`` of one uprobe_events line (``p:hftmem_1/malloc /lib/libc.so.6:0x...``)."""
    return line.split(maxsplit=1)[0].split(":", 1)[-1] if line.strip() else ""


def list_session_probes(tracefs: str | None = None, group: str | None = None) -> list[str]:
    """Lines of uprobe_events that belong to hftmem sessions (or to one ``group``). Raises ProbeError,
    TracefsMissing, AccessDenied."""
    tracefs = tracefs or find_tracefs()
    try:
        with open(_events_file(tracefs)) as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise ProbeError(f"cannot read {_events_file(tracefs)}: {exc.strerror}") from None
    out = []
    for ln in lines:
        grp = _event_of(ln).split("/", 1)[0]
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


def define_probe(tracefs: str, group: str, event: str, path: str, offset: int) -> int:
    """Define the uprobe ``group/event`` at file ``offset`` of ``path``; returns its tracepoint id
    (the perf event config). An existing definition of that name is reused. Raises ProbeError."""
    try:
        _write_events(tracefs, f"p:{group}/{event} {path}:{offset:#x}")
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise ProbeError(f"cannot define a uprobe on {event} in {path}: {exc.strerror}") from None
    try:
        with open(os.path.join(tracefs, "events", group, event, "id")) as f:
            return int(f.read())
    except (OSError, ValueError) as exc:
        raise ProbeError(f"uprobe {group}/{event} has no event id: {exc}") from None


def remove_probe(tracefs: str, group: str, event: str) -> None:
    """Remove one uprobe definition; raises OSError (EBUSY while a perf event still uses it)."""
    _write_events(tracefs, f"-:{group}/{event}")


def remove_group(group: str, tracefs: str | None = None) -> int:
    """Remove every probe of ``group``; returns how many. Raises ProbeError if one is still in use."""
    tracefs = tracefs or find_tracefs()
    removed = 0
    busy = []
    for ln in list_session_probes(tracefs, group):
        event = _event_of(ln)
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


def session_group() -> str:
    """The probe group of this hftmem process: ``hftmem_<our pid>``."""
    return f"{GROUP_PREFIX}{os.getpid()}"


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
    """Remove the probe groups of hftmem sessions that are gone (and this process's own leftovers);
    returns the groups removed. Groups still in use stay."""
    tracefs = tracefs or find_tracefs()
    groups = {_event_of(ln).split("/", 1)[0] for ln in list_session_probes(tracefs)}
    done = []
    for g in sorted(groups):
        owner = _group_owner(g)
        if owner is not None and owner != os.getpid() and _alive(owner):
            continue
        with contextlib.suppress(ProbeError):
            remove_group(g, tracefs)
            done.append(g)
    return done


class UprobeGroup:
    """This session's uprobe group in tracefs; ``close()`` (or the context manager) removes it.

    Before the first probe is defined, a guardian process is started (unless ``guardian=False``)
    that removes the group if we die without closing it. Raises TracefsMissing, AccessDenied
    (uprobe_events not writable: not root); ``pid`` only names the target in that error.
    """

    def __init__(self, group: str | None = None, *, tracefs: str | None = None, guardian: bool = True,
                 pid: int | None = None) -> None:
        self.tracefs = tracefs or find_tracefs()
        if not os.access(_events_file(self.tracefs), os.W_OK):
            raise AccessDenied(pid, "uprobe_events", "defining uprobes needs root (CAP_SYS_ADMIN)")
        self.group = group or session_group()
        self._want_guardian = guardian
        self._guardian: subprocess.Popen | None = None
        self._closed = False

    def define(self, event: str, path: str, offset: int) -> int:
        """Define ``event`` at file ``offset`` of ``path`` in this group; returns its tracepoint id.
        Raises ProbeError (also once closed)."""
        if self._closed:
            raise ProbeError(f"uprobe group {self.group} is closed")
        if self._want_guardian and self._guardian is None:
            with signals_deferred():  # a SIGTERM must not lose the Popen we have to close
                self._guardian = subprocess.Popen(
                    [sys.executable, "-I", uprobe_guardian.__file__, self.group, _events_file(self.tracefs)],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True,  # a terminal's SIGINT/SIGHUP to our group must not take it down first
                )
        return define_probe(self.tracefs, self.group, event, path, offset)

    def close(self) -> None:
        """Remove this group's probes (close their perf events first); idempotent, never raises."""
        if self._closed:
            return
        self._closed = True
        try:
            remove_group(self.group, self.tracefs)
        except SourceError:
            pass  # the guardian retries until the kernel lets go
        if self._guardian is not None:
            with contextlib.suppress(OSError):
                self._guardian.stdin.close()  # EOF: the guardian removes anything left and exits
            try:
                self._guardian.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._guardian.kill()
                self._guardian.wait()
            self._guardian = None

    def __enter__(self) -> UprobeGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------ where to put a probe

def is_libc(path: str) -> bool:
    """Whether a mapped file is the C library (libc.so.6, libc-2.31.so, musl's libc.so)."""
    return _LIBC.search(path) is not None


def probe_offsets(path: str, symbols: Iterable[str]) -> dict[str, int]:
    """symbol -> the file offset a uprobe on that function of ELF file ``path`` takes, for the
    ``symbols`` the file defines (none when it cannot be read). Parses the file once."""
    elf = ElfFunctions(path)
    out = {}
    for symbol in symbols:
        vaddr = elf.by_name.get(symbol)
        offset = elf.file_offset(vaddr) if vaddr else None
        if offset is not None:
            out[symbol] = offset
    return out


def probe_offset(path: str, symbol: str) -> int | None:
    """The file offset a uprobe on function ``symbol`` of ELF file ``path`` takes; None when the
    file has no such function (or cannot be read)."""
    return probe_offsets(path, (symbol,)).get(symbol)


# ------------------------------------------------------------------ perf events of the probes

def _tracepoint_attr(config: int, *, sample: bool = False) -> Attr:
    a = Attr()
    a.type = PERF_TYPE_TRACEPOINT
    a.size = 128
    a.config = config
    if sample:
        a.flags = F_DISABLED | F_EXCLUDE_CALLCHAIN_KERNEL
        a.sample_period = 1
        a.wakeup_events = 1
        # The call chain from frame pointers starts at the *caller's* frame at a function's entry
        # (the callee has not pushed rbp yet): the 8 bytes at the user sp give the direct caller.
        a.sample_type = SAMPLE_IP | SAMPLE_TID | SAMPLE_TIME | SAMPLE_CALLCHAIN | SAMPLE_REGS_USER | SAMPLE_STACK_USER
        a.sample_regs_user = 1 << PERF_REG_X86_SP
        a.sample_stack_user = 8
        a.sample_max_stack = 32
    return a


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGINT wait until the block ends (then arrive as usual).

    Open a perf event and record its fd inside one: a handler that unwinds (SystemExit) runs
    right after a slow syscall returns, and an fd lost there keeps its uprobe busy (not
    removable, by us or the guardian) until the process exits.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGHUP, signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def open_counter(event_id: int, tid: int) -> int:
    """A counting perf event of uprobe ``event_id`` on thread ``tid`` (0: the calling thread),
    enabled at once; read it with abi.read_count. Raises OSError (ESRCH: the thread exited)."""
    return perf_event_open(_tracepoint_attr(event_id), tid, -1)


def open_sampler(event_id: int, tid: int) -> int:
    """A sampling perf event of uprobe ``event_id`` on ``tid``, disabled until IOC_ENABLE: every hit
    records ip, tid, time, the user call chain and the return address; decode_call_sample reads it.
    Raises OSError."""
    return perf_event_open(_tracepoint_attr(event_id, sample=True), tid, -1)


def decode_call_sample(payload: bytes) -> tuple[int, int, list[int]]:
    """(ip, tid, call chain innermost first) of one REC_SAMPLE record of an open_sampler event.

    The chain holds user addresses only and includes the direct caller (read from the stack top),
    which a frame-pointer walk at function entry misses. Raises struct.error on a short record.
    """
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
    chain = [a for a in chain if a < CONTEXT_MAX]
    if ret and (len(chain) < 2 or chain[1] != ret):
        chain.insert(1, ret)  # the direct caller, missing from a frame-pointer walk at function entry
    return ip, tid, chain


# ------------------------------------------------------------------ python -m ...uprobes

def main(argv: list[str] | None = None) -> int:
    """``python -m hftmem_tui.sources.perf.uprobes [--cleanup]``: the session probes left behind."""
    parser = argparse.ArgumentParser(
        prog="python -m hftmem_tui.sources.perf.uprobes",
        description="List the uprobes hftmem sessions defined in tracefs (groups hftmem_<pid>), one "
                    "uprobe_events line each.")
    parser.add_argument("--cleanup", action="store_true",
                        help="first remove the groups of sessions that are gone (prints 'removed GROUP' each)")
    parser.add_argument("--list", action="store_true", help="list them (the default; kept for old scripts)")
    args = parser.parse_args(argv)
    try:
        if args.cleanup:
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
    sys.exit(main())
