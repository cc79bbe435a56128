"""Zero-stop hardware watchpoints through perf_event_open(PERF_TYPE_BREAKPOINT).

The kernel arms the same x86 debug registers gdb would, but without ptrace: the target is
never stopped and its TracerPid stays 0. Each write (or access, for ``rw``) raises a debug
exception in the target thread; perf records the trapping pc, the thread, a CLOCK_MONOTONIC
timestamp and the user call chain (frame pointers) into a ring buffer we mmap and poll. We
then read the watched bytes zero-stop (process_vm_readv), so the value shown is the value
*shortly after* the write, never the value at the instant of the write.

Cost to the target: the trap + sample, ~9 us per hit inside this VM (measured, see
:func:`cost_per_hit`), so this is for fields written rarely (a corrupted field, a counter that
should not move). A hit-rate guard disarms a field that is written too often.

Why perf_event_open and not a ``perf record | perf script`` pipe: see BENCHMARKS.md (same
kernel cost per hit for the target; the pipe adds two processes, ~50x more inspector CPU per
hit and a report latency bounded by perf's own buffering).

Run headless with ``hftmem watch PID hftmem_engine_stats.ticks --count 3`` (hftmem_tui/commands/watch.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import os
import select
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from hftmem_tui.sources.codemap import CodeMap
from hftmem_tui.errors import AccessDenied, NoSuchProcess, SourceError, UnmappedAddress, ZombieProcess
from hftmem_tui.sources import procfs
from hftmem_tui.sources.memory import read_memory
from hftmem_tui.sources.perf import abi
from hftmem_tui.sources.perf.calibration import cost_per_hit  # one per-boot cost cache; re-exported
from hftmem_tui.sources.watchpoint import (DEBUG_REGISTERS, Frame, HitRateGuard, HotField, WatchHit, WatchLimitError,
                                           WatchSpec)

__all__ = [
    "DEFAULT_MAX_RATE",
    "HotField",
    "PerfWatch",
    "PerfWatchStats",
    "check_perf_access",
    "cost_per_hit",
]

DEFAULT_MAX_RATE = 2000.0  # hits/s: ~2% of one core at ~9 us per hit; above that the field is "hot"


_MAX_QUEUED = 10000  # hits read but not yet symbolised/reported; beyond this they are counted as dropped


# ------------------------------------------------------------------ permission checks

def _paranoid() -> int | None:
    return procfs.read_system_int("sys/kernel/perf_event_paranoid")


def check_perf_access(pid: int | None = None, *, euid: int | None = None, caps: int | None = None,
                      paranoid: int | None | str = "read") -> str:
    """Say whether this process may arm perf breakpoints; returns who grants it ("root", ...).

    Raises AccessDenied naming what is missing: root, CAP_PERFMON, or a low enough
    kernel.perf_event_paranoid (user-space-only events need <= 2; Debian's 3 forbids them).
    ``euid``/``caps``/``paranoid`` default to this process and this kernel.
    """
    caps = procfs.own_cap_effective() if caps is None else caps
    euid = os.geteuid() if euid is None else euid
    if euid == 0 or caps & (1 << abi.CAP_SYS_ADMIN):
        return "root"
    if caps & (1 << abi.CAP_PERFMON):
        return "CAP_PERFMON"
    level = _paranoid() if paranoid == "read" else paranoid
    if level is None:
        raise AccessDenied(pid, "perf events", "/proc/sys/kernel/perf_event_paranoid is missing: "
                           "this kernel has no perf events (CONFIG_PERF_EVENTS)")
    if level > 2:
        raise AccessDenied(pid, "perf events", f"kernel.perf_event_paranoid is {level} and this user is not "
                           "root and has no CAP_PERFMON: run as root, grant CAP_PERFMON, or "
                           "sysctl kernel.perf_event_paranoid=2 (or use --via gdb)")
    return f"perf_event_paranoid={level}"


def _open_error(exc: OSError, pid: int, spec: WatchSpec) -> SourceError:
    if exc.errno in (errno.ENOSPC, errno.EBUSY):
        return WatchLimitError(f"all {DEBUG_REGISTERS} x86 debug registers are in use in process {pid} "
                               f"(another watchpoint, gdb or perf holds them): disarm one first")
    if exc.errno in (errno.EACCES, errno.EPERM):
        level = _paranoid()
        return AccessDenied(pid, "perf breakpoint events", f"the kernel refused (perf_event_paranoid={level}, "
                            "not root, no CAP_PERFMON, or no ptrace rights on the target): run as root "
                            "or the target's user, or use --via gdb")
    if exc.errno == errno.ENOENT or exc.errno == errno.EOPNOTSUPP:
        return SourceError("this kernel or CPU has no hardware breakpoint events (PERF_TYPE_BREAKPOINT): "
                           "use --via gdb")
    if exc.errno == errno.EINVAL:
        return WatchLimitError(f"the kernel refused a {spec.length}-byte {spec.access} breakpoint at "
                               f"{spec.address:#x}: not a user-space address aligned to its length")
    if exc.errno == errno.ESRCH:
        return NoSuchProcess(pid)
    return SourceError(f"perf_event_open failed: {exc.strerror}")


# ------------------------------------------------------------------ the watch

@dataclass(frozen=True, slots=True)
class PerfWatchStats:
    hits: int  # samples reported
    counted: int  # hits the kernel counted (includes hits whose samples were lost or throttled)
    lost: int  # samples the kernel dropped (ring full) or throttled
    rate_hz: float  # recent hits per second
    cost_per_hit_s: float | None  # measured on this machine, see cost_per_hit()
    armed_threads: int
    elapsed_s: float
    disarmed: str | None = None  # why the guard disarmed it, None while armed

    @property
    def engine_cpu_fraction(self) -> float | None:
        """What watching costs the target: hits/s x cost per hit, as a fraction of one core."""
        return None if self.cost_per_hit_s is None else self.rate_hz * self.cost_per_hit_s


class PerfWatch:
    """A zero-stop watchpoint on every thread of ``pid`` (threads created later inherit it).

    ``with PerfWatch(pid, spec) as w: for hit in w.hits(timeout=10): ...``. Arming raises
    AccessDenied (paranoid/capabilities), WatchLimitError (read-only access, range, all debug
    registers in use), NoSuchProcess. ``hits()`` raises HotField when more than ``max_rate``
    hits per second arrive (None: DEFAULT_MAX_RATE; 0: no guard); the watchpoint is already
    disarmed then. ``close()`` is idempotent and may be called from another thread.
    """

    backend = "perf"

    def __init__(self, pid: int, spec: WatchSpec, *, max_rate: float | None = None,
                 symbolize: bool = True, measure_cost: bool = True) -> None:
        if spec.access == "read":
            raise WatchLimitError("x86 has no read-only hardware breakpoints: watch with access rw "
                                  "(reads and writes; a read shows the value unchanged)")
        self.pid = pid
        self.spec = spec
        self.max_rate = DEFAULT_MAX_RATE if max_rate is None else float(max_rate)
        self.granted_by = check_perf_access(pid)
        self._fds: list[int] = []
        self._rings: dict[int, abi.Ring] = {}  # fd -> ring (one per CPU)
        self._mmaps: list[mmap.mmap] = []
        self._closed = False
        self._reader_done = False
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._hits = 0
        self._lost = 0
        self._dropped = 0
        self._started = time.monotonic()
        self._rate = HitRateGuard(self.max_rate, started=self._started)
        self.armed_threads = 0  # threads the breakpoint was armed on (set by arming)
        self._disarmed: str | None = None
        self._code = CodeMap(pid) if symbolize else None
        self._cost = cost_per_hit() if measure_cost else None
        try:
            self._last = read_memory(pid, spec.address, spec.length)
        except UnmappedAddress as exc:
            self.close()
            raise WatchLimitError(f"cannot watch {spec.label}: {exc}") from None
        try:
            self._arm()
        except BaseException:
            self.close()
            raise
        self._start_reader()

    # ----------------------------------------------------------- arming
    def _threads(self) -> tuple[int, ...]:
        return procfs.list_tasks(self.pid)

    def _arm(self) -> None:
        bp_type = abi.HW_BREAKPOINT_W if self.spec.access == "write" else abi.HW_BREAKPOINT_RW
        attr = abi.breakpoint_attr(self.spec.address, self.spec.length, bp_type)
        cpus = list(range(os.cpu_count() or 1))  # the target may run on any CPU, not just ours
        leader: dict[int, int] = {}
        armed = set()
        for tid in self._threads():
            for cpu in cpus:
                try:
                    fd = abi.perf_event_open(attr, tid, cpu)
                except OSError as exc:
                    if exc.errno == errno.ESRCH and tid != self.pid:
                        break  # the thread exited while we armed: nothing to watch there
                    if exc.errno == errno.ENODEV:
                        continue  # an offline CPU
                    raise _open_error(exc, self.pid, self.spec) from None
                self._fds.append(fd)
                armed.add(tid)
                if cpu not in leader:
                    mm = mmap.mmap(fd, (1 + abi.RING_PAGES) * mmap.PAGESIZE, mmap.MAP_SHARED,
                                   mmap.PROT_READ | mmap.PROT_WRITE)
                    self._mmaps.append(mm)
                    self._rings[fd] = abi.Ring(mm)
                    leader[cpu] = fd
                elif abi.ioctl(fd, abi.IOC_SET_OUTPUT, leader[cpu]) != 0:
                    err = ctypes.get_errno()
                    raise SourceError(f"perf: cannot share a ring buffer ({os.strerror(err)})")
        if not armed:
            raise NoSuchProcess(self.pid, "no thread left to watch")
        self.armed_threads = len(armed)
        for fd in self._fds:
            abi.ioctl(fd, abi.IOC_ENABLE, 0)
        self._started = time.monotonic()
        self._rate.restart(self._started)

    # ----------------------------------------------------------- reading
    def __enter__(self) -> PerfWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def armed_at(self) -> float:
        """Wall-clock time (time.time()) when the breakpoint was enabled."""
        return time.time() - (time.monotonic() - self._started)

    @property
    def closed(self) -> bool:
        """True once close() was called (by anyone, from any thread)."""
        return self._closed

    @property
    def reader_done(self) -> bool:
        """True once no more hits can arrive: the target exited, the guard tripped, or close()."""
        return self._reader_done

    @property
    def event_count(self) -> int:
        """perf events open for this watchpoint (one per armed thread and CPU)."""
        return len(self._fds)

    @property
    def stats(self) -> PerfWatchStats:
        now = time.monotonic()
        return PerfWatchStats(self._hits, self._counted(), self._lost + self._dropped,
                              self._rate.measure(now, self._counted()), self._cost,
                              self.armed_threads, now - self._started, self._disarmed)

    def _counted(self) -> int:
        total = 0
        for fd in list(self._fds):
            try:
                total += struct.unpack("<Q", os.read(fd, 8))[0]
            except OSError:
                pass  # closed concurrently
        return total

    def _start_reader(self) -> None:
        self._queue: deque[tuple] = deque()
        self._queue_cv = threading.Condition()
        self._reader = threading.Thread(target=self._read_loop, name=f"perfwatch-{self.pid}", daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        """Drain the rings as soon as the kernel wakes us and read the value at once, so ``new``
        is as close to the write as a zero-stop read can be; symbolising happens in hits()."""
        # The kernel wakes us from inside the target's trap: as SCHED_BATCH we do not preempt the
        # target on that CPU at wakeup (measured: it doubled the cost per hit on 2 vCPUs otherwise).
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setscheduler(threading.get_native_id(), os.SCHED_BATCH, os.sched_param(0))
        poller = select.poll()
        for fd in self._rings:
            poller.register(fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        hung_up: set[int] = set()
        try:
            while not self._closed:
                events = poller.poll(100)
                if self._closed or any(fd == self._wake_r for fd, _ in events):
                    break
                for fd, ev in events:
                    if ev & (select.POLLHUP | select.POLLERR):  # its thread exited: the kernel says so
                        poller.unregister(fd)
                        hung_up.add(fd)
                batch: list[tuple] = []
                for ring in list(self._rings.values()):
                    ring.drain(lambda t, _m, p: self._on_record(t, p, batch))
                if batch:
                    with self._queue_cv:
                        for item in batch:
                            if len(self._queue) >= _MAX_QUEUED:
                                self._dropped += 1
                            else:
                                self._queue.append(item)
                        self._queue_cv.notify_all()
                self._guard(time.monotonic())
                if self._disarmed:
                    break
                if (hung_up or not events) and not procfs.task_alive(self.pid, self.pid):
                    break  # the target exited
                if len(hung_up) == len(self._rings):
                    break  # every ring's thread is gone (a zombie leader keeps its /proc entry)
        except (OSError, ValueError):
            pass  # fds closed under us by close()
        finally:
            with self._queue_cv:
                self._reader_done = True
                self._queue_cv.notify_all()

    def hits(self, timeout: float | None = None) -> Iterator[WatchHit]:
        """Yield each hit until ``timeout`` seconds have passed, the target exits, or close().

        Raises HotField (already disarmed) when the guard trips.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._queue_cv:
                while not self._queue and not self._reader_done and not self._closed:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return
                    self._queue_cv.wait(0.25 if left is None else min(0.25, left))
                item = self._queue.popleft() if self._queue else None
            if self._disarmed:  # hits queued before the trip are dropped: the reason matters more
                with self._queue_cv:
                    self._dropped += len(self._queue) + (item is not None)
                    self._queue.clear()
                raise HotField(self._disarmed)
            if item is None:
                return
            if deadline is not None and item[3] > deadline:
                return
            yield self._hit(*item)

    def _guard(self, now: float) -> None:
        if self._disarmed or not self._rate.observe(now, self._counted()):
            return
        rate = self._rate.rate
        self._disarm_all()  # tripped: disarm in the kernel first, then say why
        cost = ""
        if self._cost:
            cost = f", about {rate * self._cost * 100:.0f}% of a core at {self._cost * 1e6:.1f} us per hit"
        self._disarmed = (f"disarmed {self.spec.label}: hot field, {rate:,.0f} hits/s is above the limit of "
                          f"{self.max_rate:,.0f} hits/s (each hit costs the engine a trap{cost}); "
                          f"raise the limit to watch it anyway")

    def _disarm_all(self) -> None:
        for fd in self._fds:
            abi.ioctl(fd, abi.IOC_DISABLE, 0)

    def _on_record(self, rtype: int, payload: bytes, out: list) -> None:
        if rtype == abi.REC_LOST:
            self._lost += struct.unpack_from("<Q", payload, 8)[0]
            return
        if rtype == abi.REC_THROTTLE:
            self._lost += 1
            return
        if rtype != abi.REC_SAMPLE:
            return
        ip, _pid, tid, t_ns, nr = struct.unpack_from("<QIIQQ", payload, 0)
        chain = struct.unpack_from(f"<{nr}Q", payload, 32) if nr else ()
        new = self._read_value()
        read_at = time.monotonic()
        self._hits += 1
        old, self._last = self._last, new if new is not None else self._last
        out.append((ip, tid, [a for a in chain if a < abi.CONTEXT_MAX], t_ns / 1e9, read_at, old, new, self._hits))

    def _hit(self, ip: int, tid: int, chain: list[int], t_hit: float, read_at: float, old: bytes | None,
             new: bytes | None, n: int) -> WatchHit:
        location, backtrace = self._symbolise(ip, chain)
        wall = time.time() - (time.monotonic() - t_hit)
        return WatchHit(
            time=wall, spec=self.spec, tid=tid, old=old, new=new, new_read_after=True,
            location=location, backtrace=backtrace, pause_s=None, backend="perf",
            extra={"trap_ip": ip, "read_lag_s": read_at - t_hit, "report_lag_s": time.monotonic() - t_hit,
                   "hit": n},
        )  # fmt: skip

    def _read_value(self) -> bytes | None:
        try:
            return read_memory(self.pid, self.spec.address, self.spec.length)
        except (NoSuchProcess, ZombieProcess, UnmappedAddress, AccessDenied):
            return None

    def _symbolise(self, ip: int, chain: list[int]) -> tuple[Frame | None, tuple[Frame, ...]]:
        if self._code is None:
            return Frame(ip, None), tuple(Frame(a, None) for a in chain)
        try:
            return self._code.hit_frames(ip, chain[1:])
        except SourceError:
            return Frame(ip, None), tuple(Frame(a, None) for a in chain)

    # ----------------------------------------------------------- teardown
    def _close_fds(self) -> None:
        for mm in self._mmaps:
            try:
                mm.close()
            except (BufferError, ValueError):
                pass
        self._mmaps.clear()
        self._rings.clear()
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()

    def close(self) -> None:
        """Disarm (closing the events frees the debug registers at once) and stop helpers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass
        reader = getattr(self, "_reader", None)
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=2.0)
        self._close_fds()
        if self._code is not None:
            self._code.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
