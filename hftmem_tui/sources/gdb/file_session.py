"""gdb on an executable FILE, never on a process: symbols, types, layouts (sources/symbols.py).

This session NEVER attaches: it starts gdb with no process (``--nx``, no .gdbinit, ``set
auto-load off``, no debuginfod), loads an executable *file*, and its connection is file-only: any
request that would attach, run or connect to a target is refused before it reaches gdb.
Anything that truly needs ptrace lives in session.py and says so.
"""

from __future__ import annotations

from hftmem_tui.sources.gdb.connection import DEFAULT_TIMEOUT, GdbCommandError, MiConnection, MiResult, mi_quote

__all__ = ["FileGdbSession", "GdbCommandError", "MiResult"]


class FileGdbSession:
    """One gdb process working on an executable file; use as a context manager.

    Raises ToolMissing if gdb is not installed, ToolFailed if it cannot start or load
    the file, GdbCommandError (a ToolFailed) for ``^error`` answers.
    """

    def __init__(self, exe_path: str | None = None, *, gdb: str = "gdb", timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self.exe_path = None
        self._mi = MiConnection(gdb, file_only=True, timeout=timeout, extra_output_wait=0.005)
        try:
            self.request("-gdb-set mi-async off")
            if exe_path is not None:
                self.load(exe_path)
        except BaseException:
            self.exit()
            raise

    # ------------------------------------------------------------------ requests
    def load(self, exe_path: str) -> None:
        """Load symbols of an executable file (no process). Raises GdbCommandError."""
        self.request(f"-file-exec-and-symbols {mi_quote(exe_path)}", timeout=max(self.timeout, 60.0))
        self.exe_path = exe_path

    def request(self, command: str, timeout: float | None = None) -> MiResult:
        """Send one MI command and wait for the result record of its own token.

        Raises GdbCommandError on ``^error``, ToolFailed on timeout or if gdb died,
        ValueError if the command would attach to or run a process.
        """
        return self._mi.request(command, timeout)

    def console(self, cli_command: str, timeout: float | None = None) -> str:
        """Run a CLI command (e.g. ``ptype/o X``) and return what it printed."""
        return self.request(f"-interpreter-exec console {mi_quote(cli_command)}", timeout).console

    def evaluate(self, expression: str, timeout: float | None = None) -> str:
        """``-data-evaluate-expression`` on the file (constants, sizeof, addresses)."""
        payload = self.request(f"-data-evaluate-expression {mi_quote(expression)}", timeout).payload
        return str((payload or {}).get("value", ""))

    # ------------------------------------------------------------------ shutdown
    def exit(self, timeout: float = 2.0) -> None:
        """Stop gdb: ask politely, then terminate, then kill. Safe to call twice."""
        mi = getattr(self, "_mi", None)
        if mi is not None:
            mi.quit(timeout)

    close = exit

    def __enter__(self) -> FileGdbSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.exit()
