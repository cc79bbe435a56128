"""Zero-stop reads of another process's memory, and gdb ``x/``-style formatting.

``read_memory`` copies bytes out of a running process with ``process_vm_readv(2)``
(falling back to ``/proc/PID/mem``). Neither stops, signals nor traces the target:
the kernel copies from its page tables while it keeps running. ``format_x`` renders
bytes the way gdb's ``x/8xb``, ``x/4xw``, ``x/2xg`` and ``x/s`` do, so the output of
``hftmem dump`` reads like a gdb session without the pause.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading

from hftmem_tui.errors import (
    AccessDenied,
    NoSuchProcess,
    SourceError,
    UnmappedAddress,
    ZombieProcess,
)
from hftmem_tui.sources.procfs import PROCFS, pid_path, process_alive, read_stat

__all__ = ["CHUNK", "FORMATS", "read_memory", "read_into", "format_x"]

# One iovec per MiB: big reads are split so a fault names the first bad MiB quickly
# and the kernel never pins a huge local buffer in one go.
CHUNK = 1 << 20
# Iovecs handed to one process_vm_readv call (the kernel's IOV_MAX is 1024).
_IOVS_PER_CALL = 64

_PTRACE_HINT = (
    "run as the same user as the target (or root / CAP_SYS_PTRACE); "
    "check /proc/sys/kernel/yama/ptrace_scope"
)


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


def _load_process_vm_readv():
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "process_vm_readv", None)
    if fn is None:
        return None
    fn.argtypes = [
        ctypes.c_int,
        ctypes.POINTER(_IoVec),
        ctypes.c_ulong,
        ctypes.POINTER(_IoVec),
        ctypes.c_ulong,
        ctypes.c_ulong,
    ]
    fn.restype = ctypes.c_ssize_t
    return fn


_process_vm_readv = _load_process_vm_readv()


def _raise_for_errno(err: int, pid: int, address: int, length: int, where: int, via: str,
                     procfs: str = PROCFS) -> None:
    """Turn an errno from a read into the matching typed error."""
    if err == errno.ESRCH:
        if _is_zombie(pid, procfs):
            raise ZombieProcess(pid)
        raise NoSuchProcess(pid)
    if err in (errno.EPERM, errno.EACCES):
        raise AccessDenied(pid, "memory", _PTRACE_HINT)
    if err in (errno.EFAULT, errno.EIO, errno.ENOMEM, errno.EINVAL):
        exc = UnmappedAddress(pid, address, length, f"first unreadable address 0x{where:x}")
        exc.first_unreadable = where  # type: ignore[attr-defined]
        raise exc
    raise OSError(err, f"{via} of process {pid}: {os.strerror(err)}")


def _is_zombie(pid: int, procfs: str) -> bool:
    try:
        return read_stat(pid, procfs).state == "Z"
    except (SourceError, ValueError, IndexError):  # gone, refused, or a stat we cannot parse
        return False


def _load_new_bytes():
    """PyBytes_FromStringAndSize(NULL, n) and PyBytes_AsString: a fresh bytes of n bytes to read
    into before anyone else sees it (the C API's way to fill a bytes), so the read is the only copy."""
    api = ctypes.pythonapi
    new = api.PyBytes_FromStringAndSize
    new.argtypes, new.restype = [ctypes.c_void_p, ctypes.c_ssize_t], ctypes.py_object
    addr = api.PyBytes_AsString
    addr.argtypes, addr.restype = [ctypes.py_object], ctypes.c_void_p
    return new, addr


_new_bytes, _bytes_addr = _load_new_bytes()


class _IoVecs(threading.local):
    """One local and one remote iovec array per thread, built once and refilled per call."""

    def __init__(self) -> None:
        self.local = (_IoVec * 1)()
        self.remote = (_IoVec * _IOVS_PER_CALL)()


_iovecs = _IoVecs()


def _read_vm(pid: int, address: int, length: int, base: int, procfs: str) -> None:
    """process_vm_readv of ``length`` bytes into local memory at ``base``, in chunks; raises
    typed errors, or OSError(ENOSYS) for the /proc/PID/mem fallback."""
    iov = _iovecs
    local, remote = iov.local, iov.remote
    done = 0
    while done < length:
        todo = min(length - done, CHUNK * _IOVS_PER_CALL)
        n_iov = (todo + CHUNK - 1) // CHUNK
        local[0].iov_base = base + done
        local[0].iov_len = todo
        for i in range(n_iov):
            off = i * CHUNK
            remote[i].iov_base = address + done + off
            remote[i].iov_len = min(CHUNK, todo - off)
        got = _process_vm_readv(pid, local, 1, remote, n_iov, 0)
        if got < 0:
            err = ctypes.get_errno()
            if err == errno.ENOSYS:
                raise OSError(err, "process_vm_readv not available")
            _raise_for_errno(err, pid, address, length, address + done, "process_vm_readv", procfs)
        if got == 0:
            _raise_for_errno(errno.EFAULT, pid, address, length, address + done, "process_vm_readv", procfs)
        done += got
        if got < todo:
            # A short transfer stops at the first page that is not mapped/readable.
            _raise_for_errno(errno.EFAULT, pid, address, length, address + done, "process_vm_readv", procfs)


def _read_proc_mem(pid: int, address: int, length: int, procfs: str = PROCFS) -> bytes:
    """Read through /proc/PID/mem with pread (same permission check, no stop)."""
    try:
        # The one /proc file procfs does not read for us: memory's own errors (UnmappedAddress) apply.
        fd = os.open(pid_path(pid, "mem", procfs), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NoSuchProcess(pid) from None
    except OSError as exc:
        _raise_for_errno(exc.errno or errno.EIO, pid, address, length, address, "/proc/PID/mem", procfs)
        raise  # unreachable: _raise_for_errno always raises
    try:
        parts: list[bytes] = []
        done = 0
        while done < length:
            want = min(CHUNK, length - done)
            try:
                piece = os.pread(fd, want, address + done)
            except OSError as exc:
                _raise_for_errno(exc.errno or errno.EIO, pid, address, length, address + done, "/proc/PID/mem",
                                 procfs)
                raise
            if not piece:
                # EOF: the process has no mm any more (exited) or the page is gone.
                if not process_alive(pid, procfs):
                    raise NoSuchProcess(pid)
                _raise_for_errno(errno.EIO, pid, address, length, address + done, "/proc/PID/mem", procfs)
            parts.append(piece)
            done += len(piece)
        return b"".join(parts)
    finally:
        os.close(fd)


def read_memory(pid: int, address: int, length: int, *, procfs: str = PROCFS) -> bytes:
    """Copy ``length`` bytes at ``address`` out of process ``pid`` without stopping it.

    Uses process_vm_readv straight into the returned bytes (one copy: the kernel's); falls
    back to /proc/PID/mem when the syscall is missing (ENOSYS) or refused by a seccomp filter
    (EPERM) while /proc/PID/mem is allowed. ``procfs`` is the procfs root for that fallback
    and for telling a zombie from an exit.

    Raises NoSuchProcess (pid gone), ZombieProcess, AccessDenied (another user,
    ptrace_scope, no CAP_SYS_PTRACE), UnmappedAddress (any byte of the range is not
    mapped or not readable; ``exc.first_unreadable`` names the first bad address).
    """
    _check_range(pid, address, length)
    if length == 0:
        return b""
    if _process_vm_readv is None:
        return _read_proc_mem(pid, address, length, procfs)
    out = _new_bytes(None, length)  # always a new object (NULL source), uninitialised; dropped on error
    return _read_with_fallback(pid, address, out, _bytes_addr(out), procfs)


def read_into(pid: int, address: int, buf: bytearray | memoryview, *, procfs: str = PROCFS) -> int:
    """Fill the writable buffer ``buf`` (bytearray, writable memoryview, mmap...) with the
    ``len(buf)`` bytes at ``address`` of ``pid``; returns that length. No copy but the
    kernel's and no allocation: for callers that read the same range again and again.

    Raises like read_memory; TypeError when ``buf`` is read-only.
    """
    view = memoryview(buf).cast("B")
    length = view.nbytes
    _check_range(pid, address, length)
    if length == 0:
        return 0
    if _process_vm_readv is None:
        view[:] = _read_proc_mem(pid, address, length, procfs)
        return length
    _read_into_view(pid, address, view, procfs)
    return length


def _check_range(pid: int, address: int, length: int) -> None:
    if length < 0 or address < 0:
        raise ValueError("address and length must be non-negative")
    if address + length > 1 << 64:
        raise UnmappedAddress(pid, address, length, "range wraps past the end of the address space")


def _read_into_view(pid: int, address: int, view, procfs: str):
    """Read into a writable buffer ``view`` (process_vm_readv, else /proc/PID/mem); returns it."""
    first = ctypes.c_char.from_buffer(view)  # its first byte's address; the export ends when dropped
    try:
        return _read_with_fallback(pid, address, view, ctypes.addressof(first), procfs)
    finally:
        del first


def _read_with_fallback(pid: int, address: int, out, base: int, procfs: str):
    """process_vm_readv into ``out`` (at ``base``); /proc/PID/mem when the syscall is missing or
    refused by seccomp. Returns ``out`` filled (the fallback's bytes when ``out`` is bytes)."""
    length = len(out)
    try:
        _read_vm(pid, address, length, base, procfs)
        return out
    except OSError:  # ENOSYS only: _read_vm raises typed errors for everything else
        data = _read_proc_mem(pid, address, length, procfs)
    except AccessDenied:
        # seccomp may refuse the syscall while /proc/PID/mem is still allowed.
        try:
            data = _read_proc_mem(pid, address, length, procfs)
        except AccessDenied:
            pass
        else:
            return _filled(out, data)
        raise
    return _filled(out, data)


def _filled(out, data: bytes):
    if isinstance(out, bytes):
        return data
    out[:] = data
    return out


# ---------------------------------------------------------------- gdb x/ formatting

# fmt -> (unit bytes, units per line), as gdb lays out x/8xb, x/4xw, x/2xg.
FORMATS: dict[str, tuple[int, int]] = {"xb": (1, 8), "xh": (2, 8), "xw": (4, 4), "xg": (8, 2)}
_STRING_LIMIT = 200  # gdb's default `print elements`
_REPEAT_THRESHOLD = 10  # gdb's default `print repeats`
_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 27: "\\033"}


def _label(addr: int, symbol: tuple[str, int] | None) -> str:
    if symbol is None or addr < symbol[1]:
        return f"0x{addr:x}:"
    off = addr - symbol[1]
    return f"0x{addr:x} <{symbol[0]}>:" if off == 0 else f"0x{addr:x} <{symbol[0]}+{off}>:"


def _ascii(chunk: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)


def _char_repr(ch: str, quote: str) -> str:
    """One byte (as a latin-1 character) as gdb prints it inside quotes with an ASCII host
    charset: printable ASCII as is, C escapes, every other byte (non-ASCII too) in octal."""
    code = ord(ch)
    if ch == quote or ch == "\\":
        return "\\" + ch
    if code in _ESCAPES:
        return _ESCAPES[code]
    if 32 <= code < 127:
        return ch
    return f"\\{code:03o}"


def _c_string(raw: bytes) -> str:
    """gdb's rendering of a C string: "ab", 'A' <repeats 24 times>, "cd", "\\320\\211".

    Byte by byte, as gdb in the C locale (its output under services and CI): a non-ASCII byte is
    an octal escape, never decoded, so what the target holds is shown exactly and safely.
    """
    if not raw:
        return '""'
    chars = raw.decode("latin-1")  # one character per byte
    segments: list[str] = []
    pending: list[str] = []
    i = 0
    while i < len(chars):
        j = i
        while j < len(chars) and chars[j] == chars[i]:
            j += 1
        if j - i > _REPEAT_THRESHOLD:
            if pending:
                segments.append('"' + "".join(pending) + '"')
                pending = []
            segments.append(f"'{_char_repr(chars[i], chr(39))}' <repeats {j - i} times>")
        else:
            pending.extend(_char_repr(ch, '"') for ch in chars[i:j])
        i = j
    if pending:
        segments.append('"' + "".join(pending) + '"')
    return ", ".join(segments)


def _format_strings(data: bytes, address: int, symbol: tuple[str, int] | None) -> list[str]:
    lines: list[str] = []
    pos = 0
    while pos < len(data):
        nul = data.find(b"\0", pos, pos + _STRING_LIMIT)
        if nul >= 0:
            text, nxt, more = data[pos:nul], nul + 1, ""
        else:
            end = min(pos + _STRING_LIMIT, len(data))
            text, nxt = data[pos:end], end
            more = "..." if end - pos == _STRING_LIMIT or end == len(data) else ""
        lines.append(f"{_label(address + pos, symbol)}\t{_c_string(text)}{more}")
        pos = nxt
    return lines


def format_x(
    data: bytes,
    address: int,
    fmt: str = "xb",
    *,
    symbol: tuple[str, int] | None = None,
    ascii: bool = False,
) -> list[str]:
    """Render ``data`` (read at ``address``) as gdb ``x/`` lines.

    ``fmt``: ``xb`` (8 bytes a line), ``xh``, ``xw`` (4 x 32-bit), ``xg`` (2 x 64-bit),
    ``s`` (C strings). ``symbol=(name, start_address)`` adds gdb's ``<name+off>`` label;
    ``ascii=True`` appends the printable characters of each line (not in ``s``).
    Units are little-endian like the x86-64 targets gdb reads. A trailing partial
    unit is shown byte by byte. Raises ValueError for an unknown format.
    """
    if fmt == "s":
        return _format_strings(data, address, symbol)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of xb, xh, xw, xg, s")
    unit, per_line = FORMATS[fmt]
    whole = len(data) - len(data) % unit
    lines: list[str] = []
    step = unit * per_line
    for off in range(0, whole, step):
        chunk = data[off : min(off + step, whole)]
        cells = [
            f"0x{int.from_bytes(chunk[i : i + unit], 'little'):0{unit * 2}x}"
            for i in range(0, len(chunk), unit)
        ]
        line = f"{_label(address + off, symbol)}\t" + "\t".join(cells)
        lines.append(line + (f"\t|{_ascii(chunk)}|" if ascii else ""))
    if whole < len(data):
        rest = data[whole:]
        line = f"{_label(address + whole, symbol)}\t" + "\t".join(f"0x{b:02x}" for b in rest)
        lines.append(line + (f"\t|{_ascii(rest)}|" if ascii else ""))
    return lines
