"""Typed errors raised by every source.

Each error's ``str()`` is one clear line meant for a user: the CLI prints it as
``hftmem: <message>`` and exits non-zero, the TUI shows it as a notice.
"""

from __future__ import annotations


class SourceError(Exception):
    """Base of every error a source raises on purpose."""


class NoSuchProcess(SourceError):
    """The pid does not exist (or exited while we were reading it)."""

    def __init__(self, pid: int, detail: str = "") -> None:
        self.pid = pid
        msg = f"no process with pid {pid}"
        super().__init__(f"{msg} ({detail})" if detail else msg)


class ZombieProcess(SourceError):
    """The process has exited but was not reaped: no memory left to inspect."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        super().__init__(f"process {pid} is a zombie (exited, not yet reaped): nothing to inspect")


class AccessDenied(SourceError):
    """The kernel refused us (another user's process, ptrace/perf restrictions)."""

    def __init__(self, pid: int | None, what: str, hint: str = "") -> None:
        self.pid = pid
        target = f" of process {pid}" if pid is not None else ""
        msg = f"permission denied reading {what}{target}"
        super().__init__(f"{msg}: {hint}" if hint else msg)


class KernelThread(SourceError):
    """The pid is a kernel thread: it has no user memory."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        super().__init__(f"pid {pid} is a kernel thread: it has no user-space memory to inspect")


class ToolMissing(SourceError):
    """An external tool (gdb, perf, cmake, a compiler) is not installed."""

    def __init__(self, tool: str, hint: str = "") -> None:
        self.tool = tool
        msg = f"{tool} is not installed or not on PATH"
        super().__init__(f"{msg}: {hint}" if hint else msg)


class ToolFailed(SourceError):
    """An external tool ran but failed or timed out."""


class UnmappedAddress(SourceError):
    """A memory read hit an address that is not mapped (or not readable) in the target."""

    def __init__(self, pid: int, address: int, length: int, detail: str = "") -> None:
        self.pid = pid
        self.address = address
        self.length = length
        msg = f"cannot read {length} bytes at 0x{address:x} in process {pid}: address not mapped or not readable"
        super().__init__(f"{msg} ({detail})" if detail else msg)


class SymbolNotFound(SourceError):
    """The executable has no such global symbol (or field)."""


class NoDebugInfo(SourceError):
    """The executable has no debug info, so types and layouts are unknown."""


class NotAnEngine(SourceError):
    """The process is not a hftmem demo engine (no control channel, no stats block)."""


class EngineError(SourceError):
    """The demo engine refused a request (unknown scenario, control channel busy)."""


class ConfigError(SourceError):
    """A configuration file the user wrote is unreadable or invalid (message names file:line)."""


class TracefsMissing(SourceError):
    """tracefs (where uprobes are defined) is not mounted or not reachable."""


class ProbeError(SourceError):
    """A uprobe could not be defined, enabled or removed."""
