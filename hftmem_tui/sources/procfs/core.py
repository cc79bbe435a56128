"""The one place a /proc file is opened: the procfs root, paths under it, typed errors.

Every reader takes the procfs root as an argument (``procfs=``, default "/proc"), so tests
and containers can point it elsewhere, and turns OS errors into the typed errors of
:mod:`hftmem_tui.errors` here, at this one boundary. A /proc read is a syscall that cannot be
given a timeout; its cost is bounded by what the kernel walks to write the file.
"""

from __future__ import annotations

import os
import threading

from hftmem_tui.errors import AccessDenied, NoSuchProcess, SourceError

PROCFS = "/proc"
PERMISSION_HINT = "run as the same user as the target or as root"


def pid_path(pid: int, name: str, procfs: str = PROCFS) -> str:
    """The path of /proc/PID/<name> under the procfs root."""
    return f"{procfs}/{pid}/{name}"


def os_error(e: OSError, pid: int, what: str | None, verb: str, path: str) -> SourceError:
    """The typed error for an OSError on a file of pid.

    NoSuchProcess when the file or the process is gone, AccessDenied naming ``what`` on
    EPERM/EACCES (when ``what`` is None a refusal is a plain SourceError), else a one-line
    SourceError "cannot <verb> <path>: <reason>".
    """
    if isinstance(e, (FileNotFoundError, ProcessLookupError)):  # ProcessLookupError is ESRCH
        return NoSuchProcess(pid)
    if isinstance(e, PermissionError) and what is not None:
        return AccessDenied(pid, what, PERMISSION_HINT)
    return SourceError(f"cannot {verb} {path}: {e.strerror or e}")


def read_text(pid: int, name: str, procfs: str = PROCFS) -> str:
    """Read /proc/PID/<name> as text.

    Raises NoSuchProcess (no such pid, or it exited while we read), AccessDenied (another
    user's process), SourceError (any other OS error, one line).
    """
    # Paths may hold bytes that are not UTF-8: keep them round-trippable.
    return read_bytes(pid, name, procfs).decode("utf-8", "surrogateescape")


def read_bytes(pid: int, name: str, procfs: str = PROCFS) -> bytes:
    """Read /proc/PID/<name> as bytes. Raises like read_text."""
    path = pid_path(pid, name, procfs)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise os_error(e, pid, name, "read", path) from e


def process_alive(pid: int, procfs: str = PROCFS) -> bool:
    """Whether pid has a /proc entry (a zombie still has one: see read_stat's state)."""
    return os.path.isdir(f"{procfs}/{pid}")


# --- added for speed (issue 17): smaps of 50,000 mappings is 36 MB; reading it into a buffer
# that stays (no growth by realloc, no fresh pages to fault in) saves ~15% of the kernel's cost.
class _ReadBuffer(threading.local):
    def __init__(self) -> None:
        self.buf = bytearray(1 << 16)


_read_buffer = _ReadBuffer()
KEEP_BUFFER_MAX = 64 << 20  # a larger buffer is given back after the read


def read_reused(pid: int, name: str, procfs: str = PROCFS) -> memoryview:
    """Read /proc/PID/<name> into this thread's reusable buffer; returns a view of the bytes
    read, valid until this thread's next read_reused (release it: ``with read_reused(...) as v``).
    Raises like read_text."""
    path = pid_path(pid, name, procfs)
    state = _read_buffer
    buf, n = state.buf, 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            while True:
                if n == len(buf):  # double: a seq_file read fills what it is given
                    try:
                        buf.extend(bytes(len(buf)))
                    except BufferError:  # a view of the last read is still held: grow a copy
                        buf = state.buf = buf + bytes(len(buf))
                with memoryview(buf) as whole, whole[n:] as rest:
                    got = os.readv(fd, [rest])
                if got == 0:
                    break
                n += got
        finally:
            os.close(fd)
    except OSError as e:
        raise os_error(e, pid, name, "read", path) from e
    if len(buf) > KEEP_BUFFER_MAX:
        state.buf = bytearray(1 << 16)  # the view below keeps the big one alive until released
    return memoryview(buf)[:n]
