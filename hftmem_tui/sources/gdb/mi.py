"""A small GDB/MI session over pygdbmi for FILE-ONLY work: symbols, types, layouts.

This module NEVER attaches to a process: it starts gdb with no process (``--nx``, no
.gdbinit, ``set auto-load off``, no debuginfod), loads an executable *file*, and refuses
any request that would attach, run or connect to a target (``-target-attach``,
``attach``, ``-exec-run``, ``target remote``, ...). Reading the file never stops or
traces the engine. Anything that truly needs ptrace lives elsewhere and says so.

Each request carries a unique numeric token; we read gdb's output in short slices
until the ``^done``/``^error`` result record *with that token* arrives, under an
overall deadline (pygdbmi's plain ``write`` waits out its whole timeout: pygdbmi
#37/#66). Late records of earlier requests are discarded.
"""

from __future__ import annotations

import contextlib

import itertools
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass

from hftmem_tui.errors import ToolFailed, ToolMissing
from hftmem_tui.sources.process import stop_child

__all__ = ["GdbCommandError", "MiResult", "FileGdbSession", "result_of", "wait_for_token"]

DEFAULT_TIMEOUT = 10.0
_READ_SLICE = 0.05  # one select() slice while waiting for our token

# Requests that would touch a live process or start one. Checked on every request.
_FORBIDDEN = re.compile(
    r"^\s*(?:\d*-(?:target-attach|target-select|exec-run|exec-continue|exec-interrupt|"
    r"exec-next|exec-step|exec-finish|exec-jump|exec-return|data-write|var-assign|"
    r"interpreter-exec\s+\S+\s+\"\s*(?:attach|at|att|atta|attac|run|r|start|starti|target|"
    r"tar|call|shell|python|pipe|!|set\s+var|set\s+\$|gcore|generate-core-file|detach|kill)\b))"
    r"|^\s*(?:attach|run|start|target|call|shell|python)\b",
    re.IGNORECASE,
)


class GdbCommandError(ToolFailed):
    """gdb answered a request with ``^error``; ``gdb_message`` is gdb's own text."""

    def __init__(self, command: str, gdb_message: str) -> None:
        self.command = command
        self.gdb_message = gdb_message
        super().__init__(f"gdb: {gdb_message}")


@dataclass(frozen=True)
class MiResult:
    """The result record of one request, with the console output printed before it."""

    message: str  # "done", "error", ...
    payload: dict | None
    console: str  # ~"..." stream records, concatenated
    log: str  # &"..." stream records (gdb echoes and warnings)


def _mi_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def result_of(rec: dict, command: str, console: str = "", log: str = "") -> MiResult:
    """A result record as MiResult; raises GdbCommandError for ``^error``."""
    if rec.get("message") == "error":
        payload = rec.get("payload") or {}
        raise GdbCommandError(command, str(payload.get("msg", "unknown error")).strip())
    return MiResult(rec.get("message") or "", rec.get("payload"), console, log)


def wait_for_token(ctl, token: int, command: str, deadline: float, timeout: float, on_record=None) -> MiResult:
    """Read gdb's output in short slices until the result record carrying ``token`` arrives.

    Shared by every MI session. Records that are not ours (late answers, async ``*stopped``
    notices, ...) are passed to ``on_record`` if given, else dropped. Raises GdbCommandError
    on ``^error``, ToolFailed on timeout or if gdb exited.
    """
    proc = ctl.gdb_process
    console: list[str] = []
    log: list[str] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ToolFailed(f"gdb did not answer {command!r} within {timeout:g} s")
        records = ctl.get_gdb_response(timeout_sec=min(_READ_SLICE, remaining), raise_error_on_timeout=False)
        for i, rec in enumerate(records):
            kind = rec.get("type")
            if kind == "result" and rec.get("token") == token:
                if on_record is not None:  # what came after ours in the same read (pipelined requests)
                    for later in records[i + 1:]:
                        on_record(later)
                return result_of(rec, command, "".join(console), "".join(log))
            if kind == "console" and isinstance(rec.get("payload"), str):
                console.append(rec["payload"])
            elif kind == "log" and isinstance(rec.get("payload"), str):
                log.append(rec["payload"])
            elif on_record is not None:
                on_record(rec)
            # anything else: late answers of older requests, async notices -> dropped
        if not records and (proc is None or proc.poll() is not None):
            raise ToolFailed(f"gdb exited (status {proc.returncode if proc else '?'}) while running {command!r}")


def quit_gdb(ctl, timeout: float = 2.0) -> None:
    """Stop the gdb a pygdbmi controller owns: ``-gdb-exit``, then SIGTERM (gdb detaches on it),
    then SIGKILL; its pipes closed and ``ctl.gdb_process`` cleared. Safe to call twice."""
    proc = ctl.gdb_process
    if proc is None:
        return
    try:
        if proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):  # pipe already gone: terminate/kill below
                ctl.write("-gdb-exit", read_response=False, timeout_sec=0.5)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                stop_child(proc, timeout)
    finally:
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):  # closing a broken pipe: nothing left to flush
                    stream.close()
        ctl.gdb_process = None


class FileGdbSession:
    """One gdb process working on an executable file; use as a context manager.

    Raises ToolMissing if gdb is not installed, ToolFailed if it cannot start or load
    the file, GdbCommandError (a ToolFailed) for ``^error`` answers.
    """

    def __init__(
        self,
        exe_path: str | None = None,
        *,
        gdb: str = "gdb",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        from pygdbmi.gdbcontroller import GdbController  # imported late: optional at import time

        self.timeout = timeout
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()
        gdb_path = shutil.which(gdb)
        if gdb_path is None:
            raise ToolMissing("gdb", hint="apt-get install gdb")
        command = [
            gdb_path, "--nx", "--nh", "--quiet", "--interpreter=mi3",
            "-iex", "set auto-load off",
            "-iex", "set debuginfod enabled off",
            "-iex", "set pagination off",
            "-iex", "set width 0",
            "-iex", "set height 0",
            "-iex", "set confirm off",
        ]  # fmt: skip
        try:
            # A tiny extra-output wait: we never rely on it, we wait for our token.
            self._ctl = GdbController(command, time_to_check_for_additional_output_sec=0.005)
        except (OSError, ValueError) as exc:
            raise ToolFailed(f"cannot start gdb: {exc}") from None
        self.exe_path = None
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
        self.request(f"-file-exec-and-symbols {_mi_quote(exe_path)}", timeout=max(self.timeout, 60.0))
        self.exe_path = exe_path

    def request(self, command: str, timeout: float | None = None) -> MiResult:
        """Send one MI command and wait for the result record of its own token.

        Raises GdbCommandError on ``^error``, ToolFailed on timeout or if gdb died,
        ValueError if the command would attach to or run a process.
        """
        if "\n" in command or _FORBIDDEN.search(command):
            raise ValueError(f"refusing gdb request {command!r}: this session never touches a process")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._lock:
            proc = self._ctl.gdb_process
            if proc is None or proc.poll() is not None:
                raise ToolFailed("gdb is not running (it exited or was closed)")
            token = next(self._tokens)
            try:
                self._ctl.write(f"{token}{command}", read_response=False, timeout_sec=1.0)
            except OSError as exc:
                raise ToolFailed(f"cannot talk to gdb: {exc}") from None
            return wait_for_token(self._ctl, token, command, deadline, self.timeout if timeout is None else timeout)

    def console(self, cli_command: str, timeout: float | None = None) -> str:
        """Run a CLI command (e.g. ``ptype/o X``) and return what it printed."""
        return self.request(f"-interpreter-exec console {_mi_quote(cli_command)}", timeout).console

    def evaluate(self, expression: str, timeout: float | None = None) -> str:
        """``-data-evaluate-expression`` on the file (constants, sizeof, addresses)."""
        payload = self.request(f"-data-evaluate-expression {_mi_quote(expression)}", timeout).payload
        return str((payload or {}).get("value", ""))

    # ------------------------------------------------------------------ shutdown
    def exit(self, timeout: float = 2.0) -> None:
        """Stop gdb: ask politely, then terminate, then kill. Safe to call twice."""
        ctl = getattr(self, "_ctl", None)
        if ctl is not None:
            quit_gdb(ctl, timeout)

    close = exit

    def __enter__(self) -> FileGdbSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.exit()
