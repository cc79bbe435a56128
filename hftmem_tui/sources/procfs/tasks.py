"""One process's threads (/proc/PID/task), names, links (exe, fd/N) and oom_score_adj."""

from __future__ import annotations

import os

from hftmem_tui.errors import NoSuchProcess
from hftmem_tui.sources.procfs.core import PROCFS, os_error, pid_path, read_text
from hftmem_tui.sources.procfs.status import Stat, parse_stat


def list_tasks(pid: int, procfs: str = PROCFS) -> tuple[int, ...]:
    """Thread ids of pid, sorted (/proc/PID/task). Raises NoSuchProcess, AccessDenied, SourceError."""
    path = pid_path(pid, "task", procfs)
    try:
        names = os.listdir(path)
    except OSError as e:
        raise os_error(e, pid, "task", "list", path) from e
    return tuple(sorted(int(n) for n in names if n.isdigit()))


def task_alive(pid: int, tid: int, procfs: str = PROCFS) -> bool:
    """Whether thread tid of pid still has a /proc entry (a zombie leader keeps its entry)."""
    return os.path.exists(pid_path(pid, f"task/{tid}", procfs))


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
    path = pid_path(pid, name, procfs)
    try:
        return os.fsdecode(os.readlink(os.fsencode(path)))
    except OSError as e:
        raise os_error(e, pid, name, "read link", path) from e


def exe_identity(pid: int, procfs: str = PROCFS) -> tuple[str, int, int]:
    """(path without " (deleted)", st_dev, st_ino) of the file /proc/PID/exe points at.

    The device and inode identify the file even when the path is reused or only exists in
    another mount namespace. Raises NoSuchProcess, AccessDenied, SourceError.
    """
    path = read_link(pid, "exe", procfs).removesuffix(" (deleted)")
    link = pid_path(pid, "exe", procfs)
    try:
        st = os.stat(link)
    except OSError as e:
        raise os_error(e, pid, "exe", "stat", link) from e
    return path, st.st_dev, st.st_ino


def set_oom_score_adj(pid: int, value: int, procfs: str = PROCFS) -> None:
    """Write /proc/PID/oom_score_adj (for our own children, e.g. gdb). Raises SourceError."""
    path = pid_path(pid, "oom_score_adj", procfs)
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except OSError as e:
        raise os_error(e, pid, None, "write", path) from e
