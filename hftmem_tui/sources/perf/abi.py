"""perf_event_open(2) from Python (ctypes): the attr struct, the syscall, ioctls and the mmap ring.

Shared by the breakpoint watchpoints (breakpoints), the allocation probes (uprobes) and the cost
calibration. No perf tool, no ptrace: the kernel counts and samples, we read counters with
read(2) and samples from the ring buffer.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
import time

# ------------------------------------------------------------------ kernel ABI (linux/perf_event.h)
NR_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241}.get(os.uname().machine, 298)
PERF_TYPE_TRACEPOINT, PERF_TYPE_BREAKPOINT = 2, 5
HW_BREAKPOINT_R, HW_BREAKPOINT_W = 1, 2
HW_BREAKPOINT_RW = HW_BREAKPOINT_R | HW_BREAKPOINT_W
SAMPLE_IP, SAMPLE_TID, SAMPLE_TIME, SAMPLE_CALLCHAIN = 1 << 0, 1 << 1, 1 << 2, 1 << 5
SAMPLE_REGS_USER, SAMPLE_STACK_USER = 1 << 12, 1 << 13
PERF_REG_X86_SP = 7
F_DISABLED, F_INHERIT, F_EXCLUDE_KERNEL, F_EXCLUDE_HV = 1 << 0, 1 << 1, 1 << 5, 1 << 6
F_SAMPLE_ID_ALL, F_EXCLUDE_CALLCHAIN_KERNEL, F_USE_CLOCKID = 1 << 18, 1 << 21, 1 << 25
IOC_ENABLE, IOC_DISABLE, IOC_SET_OUTPUT = 0x2400, 0x2401, 0x2405
FLAG_FD_CLOEXEC = 1 << 3
REC_LOST, REC_THROTTLE, REC_SAMPLE = 2, 5, 9
CONTEXT_MAX = (1 << 64) - 4095  # callchain context markers (PERF_CONTEXT_USER...) are above this
RING_PAGES = 16  # data pages per ring: 64 KiB, ~300 samples with a 20-deep call chain
MAX_STACK = 32
ATTR_SIZE = 128  # PERF_ATTR_SIZE_VER7
CAP_SYS_ADMIN, CAP_PERFMON = 21, 38


class Attr(ctypes.Structure):
    """struct perf_event_attr up to PERF_ATTR_SIZE_VER7 (flags as one 64-bit field)."""

    _fields_ = [
        ("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64), ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64), ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32), ("bp_type", ctypes.c_uint32),
        ("bp_addr", ctypes.c_uint64), ("bp_len", ctypes.c_uint64),
        ("branch_sample_type", ctypes.c_uint64), ("sample_regs_user", ctypes.c_uint64),
        ("sample_stack_user", ctypes.c_uint32), ("clockid", ctypes.c_int32),
        ("sample_regs_intr", ctypes.c_uint64), ("aux_watermark", ctypes.c_uint32),
        ("sample_max_stack", ctypes.c_uint16), ("_r2", ctypes.c_uint16),
        ("aux_sample_size", ctypes.c_uint32), ("_r3", ctypes.c_uint32), ("sig_data", ctypes.c_uint64),
    ]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_ioctl = _libc.ioctl
_ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong]
_ioctl.restype = ctypes.c_int


def perf_event_open(attr: Attr, tid: int, cpu: int, group_fd: int = -1) -> int:
    """The syscall (close-on-exec fd); raises OSError with the kernel's errno."""
    fd = _syscall(NR_PERF_EVENT_OPEN, ctypes.byref(attr), ctypes.c_int(tid), ctypes.c_int(cpu),
                  ctypes.c_int(group_fd), ctypes.c_ulong(FLAG_FD_CLOEXEC))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(fd)


def ioctl(fd: int, request: int, arg: int = 0) -> int:
    """ioctl(2) on a perf fd; returns its result (-1 with ctypes.get_errno() set on failure)."""
    return _ioctl(fd, request, arg)


def read_count(fd: int) -> int:
    """The counter of a counting event (read_format 0). Raises OSError."""
    return struct.unpack("<Q", os.read(fd, 8))[0]


def map_ring(fd: int, pages: int = RING_PAGES) -> mmap.mmap:
    """mmap the header page + ``pages`` data pages of a sampling event. Raises OSError."""
    return mmap.mmap(fd, (1 + pages) * mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)


def breakpoint_attr(address: int, length: int, bp_type: int, *, sample: bool = True,
                    inherit: bool = True) -> Attr:
    """The attr of a user-space hardware breakpoint on ``length`` bytes at ``address``, disabled
    at open; with ``sample``, each hit records ip, tid, CLOCK_MONOTONIC time and the call chain."""
    a = Attr()
    a.type = PERF_TYPE_BREAKPOINT
    a.size = ATTR_SIZE
    a.sample_period = 1
    a.bp_type = bp_type
    a.bp_addr = address
    a.bp_len = length
    a.flags = F_DISABLED | F_EXCLUDE_KERNEL | F_EXCLUDE_HV | (F_INHERIT if inherit else 0)
    if sample:
        a.sample_type = SAMPLE_IP | SAMPLE_TID | SAMPLE_TIME | SAMPLE_CALLCHAIN
        a.flags |= F_SAMPLE_ID_ALL | F_EXCLUDE_CALLCHAIN_KERNEL | F_USE_CLOCKID
        a.clockid = time.CLOCK_MONOTONIC  # timestamps comparable with time.monotonic(): hit->report latency
        a.wakeup_events = 1  # wake the reader on every sample: report latency, not batching
        a.sample_max_stack = MAX_STACK
    return a


class Ring:
    """One perf mmap ring: header page + data pages; records never straddle our reads."""

    def __init__(self, mm: mmap.mmap) -> None:
        self.mm = mm
        self.data_offset, self.data_size = struct.unpack_from("<QQ", mm, 1040)
        if not self.data_size:  # kernels before 4.1 leave them 0
            self.data_offset, self.data_size = mmap.PAGESIZE, len(mm) - mmap.PAGESIZE

    def drain(self, on_record) -> int:
        """Call ``on_record(type, misc, payload)`` for each pending record; returns how many."""
        mm = self.mm
        head = struct.unpack_from("<Q", mm, 1024)[0]
        tail = struct.unpack_from("<Q", mm, 1032)[0]
        n = 0
        size, off = self.data_size, self.data_offset
        while tail < head:
            pos = tail % size
            hdr = self._read(pos, 8, off, size)
            rtype, misc, rsize = struct.unpack("<IHH", hdr)
            if rsize < 8:
                break
            payload = self._read((pos + 8) % size, rsize - 8, off, size)
            tail += rsize
            on_record(rtype, misc, payload)
            n += 1
        struct.pack_into("<Q", mm, 1032, tail)
        return n

    def _read(self, pos: int, n: int, off: int, size: int) -> bytes:
        if pos + n <= size:
            return self.mm[off + pos: off + pos + n]
        first = size - pos
        return self.mm[off + pos: off + size] + self.mm[off: off + n - first]
