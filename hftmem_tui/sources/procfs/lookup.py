"""Find a process by name, as pgrep does, and identify it by (pid, start time).

``find_processes(pattern)`` lists /proc once and reads each process's stat (comm, flags, start
time): an exact name match wins; otherwise the pattern is a regular expression searched in the
process name (comm, at most 15 characters: pgrep's default). hftmem itself, its parent (the
shell that ran it) and kernel threads are never candidates. Called once per command, never per
refresh.
"""

from __future__ import annotations

import os
import pwd
import re
import time
from dataclasses import dataclass

from hftmem_tui.errors import SourceError
from hftmem_tui.sources.procfs.core import PROCFS, read_text
from hftmem_tui.sources.procfs.status import read_stat, read_status
from hftmem_tui.sources.procfs.system import read_system
from hftmem_tui.textsafe import visible  # one escaping for every outside name (re-exported here)

COMM_LEN = 15  # TASK_COMM_LEN - 1: the kernel keeps the first 15 bytes of a name


@dataclass(frozen=True, slots=True)
class ProcessId:
    """A process as hftmem follows it: a pid is reused, (pid, start time) is not."""

    pid: int
    start_ticks: int  # field 22 of /proc/PID/stat: clock ticks after boot


@dataclass(frozen=True, slots=True)
class Candidate:
    """One process a name matched, with what a user needs to tell it from the others."""

    pid: int
    start_ticks: int
    comm: str
    user: str
    started: str  # local clock time (date too when not today)
    cmdline: str  # arguments joined by spaces, control characters escaped

    def line(self) -> str:
        return f"{self.pid:>7}  {self.user:<10} {self.started:<16} {self.cmdline or '[' + self.comm + ']'}"


class NoMatch(SourceError):
    """No process has that name."""


class AmbiguousName(SourceError):
    """Several processes match a name: the message lists them, one per line."""


def identify(pid: int, procfs: str = PROCFS) -> ProcessId:
    """(pid, start time) of ``pid``. Raises NoSuchProcess, SourceError."""
    return ProcessId(pid, read_stat(pid, procfs).starttime_ticks)


def _pids(procfs: str) -> list[int]:
    try:
        return sorted(int(n) for n in os.listdir(procfs) if n.isdigit())
    except OSError as e:
        raise SourceError(f"cannot list processes in {procfs}: {e.strerror or e}") from e


def _matches(pattern: str, procfs: str) -> list[tuple[int, int, str]]:
    """(pid, start ticks, comm) of every user process whose name matches, exact names first."""
    own = {os.getpid(), os.getppid()}
    name = pattern[:COMM_LEN]
    regex = re.compile(pattern)
    exact, found = [], []
    for pid in _pids(procfs):
        if pid in own:
            continue
        try:
            st = read_stat(pid, procfs)
        except SourceError:  # exited meanwhile, or unreadable: not a candidate
            continue
        if st.is_kernel_thread:
            continue
        if st.comm == name:
            exact.append((pid, st.starttime_ticks, st.comm))
        elif regex.search(st.comm):
            found.append((pid, st.starttime_ticks, st.comm))
    return exact or found


def _started(start_ticks: int, procfs: str) -> str:
    btime = next((int(ln.split()[1]) for ln in (read_system("stat", procfs) or "").split("\n")
                  if ln.startswith("btime ")), None)
    if btime is None:
        return f"+{start_ticks} ticks"
    t = btime + start_ticks / os.sysconf("SC_CLK_TCK")
    fmt = "%H:%M:%S" if time.localtime(t)[:3] == time.localtime()[:3] else "%Y-%m-%d %H:%M"
    return time.strftime(fmt, time.localtime(t))


def _user(pid: int, procfs: str) -> str:
    try:
        uid = read_status(pid, procfs).uid
    except SourceError:
        return "?"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def describe(pid: int, start_ticks: int, comm: str, procfs: str = PROCFS) -> Candidate:
    """What a candidate list shows of one process (user, start time, command line)."""
    try:
        cmdline = " ".join(a for a in read_text(pid, "cmdline", procfs).split("\0") if a)
    except SourceError:
        cmdline = ""
    return Candidate(pid, start_ticks, visible(comm), visible(_user(pid, procfs)),
                     _started(start_ticks, procfs), visible(cmdline))


def find_processes(pattern: str, procfs: str = PROCFS) -> tuple[Candidate, ...]:
    """Every process ``pattern`` names (exact name first, else regex on the name), oldest first.

    Raises SourceError when /proc cannot be listed or the pattern is not a regular expression.
    """
    try:
        found = _matches(pattern, procfs)
    except re.error as e:
        raise SourceError(f"not a valid name pattern: {pattern!r} ({e})") from None
    found.sort(key=lambda m: (m[1], m[0]))
    return tuple(describe(pid, start, comm, procfs) for pid, start, comm in found)


def resolve(target: int | str, procfs: str = PROCFS) -> ProcessId:
    """The one process ``target`` names: a pid as is, a name or pattern when it matches one process.

    Raises NoSuchProcess (no such pid), NoMatch (nothing matches), AmbiguousName (several match: the
    message lists pid, user, start time and command line of each, one per line).
    """
    if isinstance(target, int):
        return identify(target, procfs)
    found = find_processes(target, procfs)
    if not found:
        raise NoMatch(f"no process named '{visible(target)}' (a pattern matched against the process name, "
                      "as pgrep does; hftmem and its shell excluded)")
    if len(found) > 1:
        lines = "\n".join(f"  {c.line()}" for c in found)
        raise AmbiguousName(f"{len(found)} processes match '{visible(target)}': give one pid\n"
                            f"  {'PID':>7}  {'USER':<10} {'STARTED':<16} COMMAND\n{lines}")
    return ProcessId(found[0].pid, found[0].start_ticks)
