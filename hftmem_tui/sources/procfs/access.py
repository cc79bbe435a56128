"""Why the kernel refused to let hftmem read a process: what can be checked, said precisely.

A refused /proc/PID/mem, smaps or process_vm_readv is the kernel's ptrace access check: the
same uid and a dumpable target, or CAP_SYS_PTRACE; Yama's ptrace_scope narrows it further
(1: descendants only, 2: CAP_SYS_PTRACE only, 3: nobody). Root in a container usually lacks
CAP_SYS_PTRACE, so "run as root" is not the fix there. Read only after a refusal, never per refresh.
"""

from __future__ import annotations

import os

from hftmem_tui.errors import SourceError
from hftmem_tui.sources.procfs.core import PERMISSION_HINT, PROCFS, pid_path, read_text
from hftmem_tui.sources.procfs.status import read_stat, read_status
from hftmem_tui.sources.procfs.system import own_cap_effective, read_system_int
from hftmem_tui.sources.procfs.tasks import read_link

CAP_SYS_PTRACE = 19
_YAMA = "sys/kernel/yama/ptrace_scope"


def _is_descendant(pid: int, procfs: str) -> bool:
    me, seen = os.getpid(), set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            pid = read_stat(pid, procfs).ppid
        except SourceError:
            return False
        if pid == me:
            return True
    return False


def _status_field(pid: int, name: str, procfs: str) -> str | None:
    try:
        text = read_text(pid, "status", procfs)
    except SourceError:
        return None
    return next((ln.split(":", 1)[1].strip() for ln in text.split("\n") if ln.startswith(name + ":")), None)


def _pid_namespace_differs(pid: int, procfs: str) -> str | None:
    try:
        theirs = read_link(pid, "ns/pid", procfs)
        ours = read_link(os.getpid(), "ns/pid", procfs)
    except SourceError:  # the link is behind the same access check: compare the NSpid depths
        theirs_ns, ours_ns = _status_field(pid, "NSpid", procfs), _status_field(os.getpid(), "NSpid", procfs)
        if theirs_ns and ours_ns and len(theirs_ns.split()) != len(ours_ns.split()):
            return "it is in another pid namespace (a container's: its NSpid is " + theirs_ns + ")"
        return None
    return f"it is in another pid namespace ({theirs}, hftmem in {ours})" if theirs != ours else None


def _missing_caps(pid: int, procfs: str) -> int:
    theirs = _status_field(pid, "CapPrm", procfs)
    try:
        return int(theirs, 16) & ~own_cap_effective(procfs) if theirs else 0
    except ValueError:
        return 0


def _yama(scope: int | None, has_ptrace: bool, pid: int, procfs: str) -> str | None:
    fix = "sysctl kernel.yama.ptrace_scope=0, or give hftmem CAP_SYS_PTRACE"
    if scope == 3:
        return "Yama ptrace_scope is 3: no process may read another's memory until reboot"
    if scope == 2 and not has_ptrace:
        return f"Yama ptrace_scope is 2: only a process with CAP_SYS_PTRACE may read another's memory ({fix})"
    if scope == 1 and not has_ptrace and not _is_descendant(pid, procfs):
        return (f"Yama ptrace_scope is 1: only the target's ancestors or a process with CAP_SYS_PTRACE may read "
                f"its memory ({fix})")
    return None


def denial_reasons(pid: int, procfs: str = PROCFS) -> list[str]:
    """What keeps hftmem from reading ``pid``'s memory, as far as can be checked. Never raises."""
    has_ptrace = bool(own_cap_effective(procfs) >> CAP_SYS_PTRACE & 1)
    euid = os.geteuid()
    reasons: list[str] = []
    try:
        uid = read_status(pid, procfs).uid
    except SourceError:
        uid = None
    if uid is not None and uid != euid and not has_ptrace:
        reasons.append(f"it runs as uid {uid} and hftmem as uid {euid} without CAP_SYS_PTRACE "
                       f"(run as uid {uid}, or give hftmem CAP_SYS_PTRACE)")
    try:
        owner = os.stat(pid_path(pid, "", procfs)).st_uid
    except OSError:
        owner = None
    if uid is not None and owner is not None and owner != uid and not has_ptrace:
        reasons.append("it is not dumpable (setuid, or prctl(PR_SET_DUMPABLE, 0)): only CAP_SYS_PTRACE reads it")
    scope = read_system_int(_YAMA, procfs)
    yama = _yama(scope, has_ptrace, pid, procfs)
    if yama:
        reasons.append(yama)
    ns = _pid_namespace_differs(pid, procfs)
    if ns:
        reasons.append(ns)
    if euid == 0 and not has_ptrace:
        reasons.append("hftmem runs as root but without CAP_SYS_PTRACE (a container drops it: "
                       "docker run --cap-add SYS_PTRACE)")
    missing = _missing_caps(pid, procfs)
    if missing and not has_ptrace:
        reasons.append(f"it holds capabilities hftmem lacks (mask {missing:#x}): reading it needs CAP_SYS_PTRACE")
    if not reasons and has_ptrace:
        extra = f" (it holds capabilities hftmem lacks: mask {missing:#x})" if missing else ""
        yama_state = "no Yama" if scope is None else f"Yama ptrace_scope {scope}"
        reasons.append(f"same uid, hftmem has CAP_SYS_PTRACE, {yama_state}{extra}: a security module "
                       "(AppArmor, SELinux, Landlock) or the sandbox hftmem runs in refuses it")
    return reasons


def explain_denial(pid: int | None, procfs: str = PROCFS) -> str:
    """The one-line hint for a refusal on ``pid``: the checked reasons, or the generic hint."""
    reasons = denial_reasons(pid, procfs) if pid else []
    return "; ".join(reasons) if reasons else PERMISSION_HINT
