"""Before gdb attaches: say why ptrace would fail, in the user's words, without touching the target.

Checked in order: the process itself (alive, not a zombie or kernel thread), another tracer
(TracerPid: ptrace allows one), Yama's ptrace_scope, another user's process without
CAP_SYS_PTRACE, gdb missing, an executable without debug info, in it or in a separate debug
file (gdb could name no line).
"""

from __future__ import annotations

import os
import shutil

from hftmem_tui.errors import AccessDenied, NoDebugInfo, SourceError, ToolMissing
from hftmem_tui.sources import procfs
from hftmem_tui.sources.debuginfo import find_debug_file
from hftmem_tui.sources.elf import read_elf_info
from hftmem_tui.sources.symbols import exe_path_of

__all__ = ["AlreadyTraced", "CAP_SYS_PTRACE", "already_traced", "check_attach", "tracer_name"]

CAP_SYS_PTRACE = 19
PTRACE_SCOPE = "sys/kernel/yama/ptrace_scope"


class AlreadyTraced(SourceError):
    """Another debugger or tracer already holds the process (ptrace allows one tracer)."""


def tracer_name(tracer_pid: int) -> str:
    """The command name of the tracer, "?" when it cannot be read (it may be gone already)."""
    try:
        return procfs.read_comm(tracer_pid).strip()
    except SourceError:
        return "?"


def already_traced(pid: int, tracer_pid: int, why: str) -> AlreadyTraced:
    """The AlreadyTraced error naming the tracer; ``why`` ends the message."""
    return AlreadyTraced(f"process {pid} is already traced by pid {tracer_pid} ({tracer_name(tracer_pid)}): {why}")


def _check_ptrace_rights(pid: int, owner_uid: int, scope: int | None, euid: int, caps: int) -> None:
    privileged = euid == 0 or bool(caps & (1 << CAP_SYS_PTRACE))
    if scope == 3:
        raise AccessDenied(pid, "it with ptrace", "kernel.yama.ptrace_scope is 3: attaching is disabled until "
                           "reboot (use the perf backend: --via perf)")
    if scope == 2 and not privileged:
        raise AccessDenied(pid, "it with ptrace", "kernel.yama.ptrace_scope is 2: only root or CAP_SYS_PTRACE "
                           "may attach (use the perf backend: --via perf)")
    if scope == 1 and not privileged:
        raise AccessDenied(pid, "it with ptrace", "kernel.yama.ptrace_scope is 1: a debugger may attach only to "
                           "its own descendants; run as root, grant CAP_SYS_PTRACE, or sysctl "
                           "kernel.yama.ptrace_scope=0")
    if not privileged and owner_uid != euid:
        raise AccessDenied(pid, "it with ptrace", f"it belongs to uid {owner_uid}: run as that user or root")


def check_attach(pid: int, *, gdb: str = "gdb", scope: int | None | str = "read", euid: int | None = None,
                 caps: int | None = None) -> str:
    """Check that gdb could attach to ``pid`` without trouble; return the executable's path.

    Raises NoSuchProcess/ZombieProcess/KernelThread, AlreadyTraced (TracerPid set), AccessDenied
    (Yama ptrace_scope, another user's process), ToolMissing (gdb), NoDebugInfo (stripped or
    built without -g). ``scope``/``euid``/``caps`` default to this machine and this process
    (no Yama: plain uid/capability rules).
    """
    status = procfs.check_target(pid)
    if status.tracer_pid:
        raise already_traced(pid, status.tracer_pid, "another debugger or tracer holds it; detach that one "
                             "first (ptrace allows one tracer)")
    _check_ptrace_rights(
        pid, status.uid,
        scope=procfs.read_system_int(PTRACE_SCOPE) if scope == "read" else scope,
        euid=os.geteuid() if euid is None else euid,
        caps=procfs.own_cap_effective() if caps is None else caps,
    )  # fmt: skip
    if shutil.which(gdb) is None:
        raise ToolMissing("gdb", hint="apt-get install gdb (or use the perf backend: --via perf)")
    exe = exe_path_of(pid)
    try:
        info = read_elf_info(exe)
    except OSError as exc:
        raise AccessDenied(pid, f"its executable {exe}", exc.strerror or str(exc)) from None
    # gdb also reads a separate debug file (debuglink, build-id path): the same search as gdb's.
    if not info.has_debug_info and find_debug_file(exe) is None:
        raise NoDebugInfo(f"{exe}: no debug info (built without -g or stripped): gdb could not name the "
                          f"writing line or the locals; rebuild with -g or use the perf backend")
    return exe
