"""One GDB/MI connection: the gdb process, its tokens, and each request's own answer.

Both gdb sessions talk through it: FileGdbSession (gdb on an executable FILE: symbols, types,
layouts) and GdbSession (gdb attached to a pid: watchpoints). pygdbmi reads and parses gdb's
output (its IoManager, used as it is); this class owns the process and the protocol around it.

Each request carries a unique numeric token; we read gdb's output in short slices until the
``^done``/``^error`` result record *with that token* arrives, under an overall deadline
(pygdbmi's plain ``write`` waits out its whole timeout: pygdbmi #37/#66). Records that are not
an answer (async ``*stopped`` notices, ...) go to the caller's ``on_record``, even when they
arrive in the same read right after ours; answers of other requests still awaited are kept for
their own wait, late answers of abandoned requests are dropped.

A ``file_only`` connection refuses every request that would attach, run or connect to a target
(``-target-attach``, ``attach``, ``-exec-run``, ``target remote``, ...): reading a file never
stops or traces the engine.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from hftmem_tui.errors import ToolFailed, ToolMissing
from hftmem_tui.sources.process import stop_child

__all__ = ["DEFAULT_TIMEOUT", "FORBIDDEN", "GDB_OPTIONS", "GdbCommandError", "MiConnection", "MiResult", "mi_quote",
           "result_of"]

DEFAULT_TIMEOUT = 10.0
READ_SLICE = 0.05  # one select() slice while waiting for our token

# No .gdbinit, no auto-loaded scripts, no network (debuginfod), no pager, no questions.
GDB_OPTIONS = (
    "--nx", "--nh", "--quiet", "--interpreter=mi3",
    "-iex", "set auto-load off",
    "-iex", "set debuginfod enabled off",
    "-iex", "set pagination off",
    "-iex", "set width 0",
    "-iex", "set height 0",
    "-iex", "set confirm off",
)  # fmt: skip

# Requests that would touch a live process or start one: refused on a file-only connection.
FORBIDDEN = re.compile(
    r"^\s*(?:\d*-(?:target-attach|target-select|exec-run|exec-continue|exec-interrupt|"
    r"exec-next|exec-step|exec-finish|exec-jump|exec-return|data-write|var-assign|"
    r"interpreter-exec\s+\S+\s+\"\s*(?:attach|at|att|atta|attac|run|r|start|starti|target|"
    r"tar|call|shell|python|pipe|!|set\s+var|set\s+\$|gcore|generate-core-file|detach|kill)\b))"
    r"|^\s*(?:attach|run|start|target|call|shell|python)\b",
    re.IGNORECASE,
)

OnRecord = Callable[[dict], None]


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


def mi_quote(text: str) -> str:
    """``text`` as an MI c-string argument (backslashes and double quotes escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def result_of(rec: dict, command: str, console: str = "", log: str = "") -> MiResult:
    """A result record as MiResult; raises GdbCommandError for ``^error``."""
    if rec.get("message") == "error":
        payload = rec.get("payload") or {}
        raise GdbCommandError(command, str(payload.get("msg", "unknown error")).strip())
    return MiResult(rec.get("message") or "", rec.get("payload"), console, log)


class MiConnection:
    """One gdb process spoken to over MI; thread-safe per call (callers serialise sequences).

    ``file_only``: refuse requests that would touch a process (ValueError). ``own_session``: gdb
    in its own session, so a terminal's Ctrl-C (SIGINT to the foreground group) or an SSH drop
    (SIGHUP) reaches the inspector, which detaches, not gdb. Raises ToolMissing if gdb is not
    installed, ToolFailed if it cannot start.
    """

    def __init__(self, gdb: str = "gdb", *, file_only: bool, own_session: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, extra_output_wait: float = 0.0002) -> None:
        from pygdbmi.IoManager import IoManager  # imported late: optional at import time

        self.timeout = timeout
        self.file_only = file_only
        self._tokens = itertools.count(1)
        self._pending: set[int] = set()  # tokens sent whose answer someone will wait for
        self._answers: dict[int, tuple[dict, str, str]] = {}  # token -> (record, console, log)
        self._console: list[str] = []  # stream output since the last result record
        self._log: list[str] = []
        self._lock = threading.RLock()
        self._closed = False
        path = shutil.which(gdb)
        if path is None:
            raise ToolMissing("gdb", hint="apt-get install gdb")
        try:
            self._proc = subprocess.Popen([path, *GDB_OPTIONS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, bufsize=0, start_new_session=own_session)
        except (OSError, ValueError) as exc:
            raise ToolFailed(f"cannot start gdb: {exc}") from None
        # A tiny extra-output wait: we never rely on it, we wait for our token (pygdbmi #37/#66).
        self._io = IoManager(self._proc.stdin, self._proc.stdout, self._proc.stderr, extra_output_wait)

    # ------------------------------------------------------------------ the process
    @property
    def pid(self) -> int:
        """gdb's pid (still set after quit())."""
        return self._proc.pid

    def alive(self) -> bool:
        """Whether gdb runs and this connection was not quit."""
        return not self._closed and self._proc.poll() is None

    def fileno(self) -> int:
        """gdb's stdout, for a reader's select(): readable when gdb printed something."""
        return self._proc.stdout.fileno()

    # ------------------------------------------------------------------ requests
    def check(self, command: str) -> None:
        """Raise ValueError if ``command`` may not be sent on this connection (file-only rules,
        or more than one line: a newline would start a second request)."""
        if self.file_only and ("\n" in command or FORBIDDEN.search(command)):
            raise ValueError(f"refusing gdb request {command!r}: this session never touches a process")
        if "\n" in command:
            raise ValueError(f"refusing gdb request {command!r}: one request is one line")

    def send(self, *commands: str) -> list[int]:
        """Write ``commands`` in one write, each with a new token; returns the tokens, in order.

        Raises ValueError (see check), ToolFailed if gdb is not running or the pipe broke.
        """
        for command in commands:
            self.check(command)
        with self._lock:
            if not self.alive():
                raise ToolFailed("gdb is not running (it exited or was closed)")
            tokens = [next(self._tokens) for _ in commands]
            try:
                self._io.write([f"{t}{c}" for t, c in zip(tokens, commands)], read_response=False, timeout_sec=1.0)
            except OSError as exc:
                raise ToolFailed(f"cannot talk to gdb: {exc}") from None
            self._pending.update(tokens)
            return tokens

    def wait(self, token: int, command: str, timeout: float | None = None,
             on_record: OnRecord | None = None) -> MiResult:
        """Read gdb's output in short slices until the result record carrying ``token`` arrives.

        Other records go to ``on_record`` (dropped without one). Raises GdbCommandError on
        ``^error``, ToolFailed on timeout or if gdb exited, ValueError for a token not awaited.
        """
        t = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + t
        with self._lock:
            if token not in self._pending and token not in self._answers:
                raise ValueError(f"gdb request token {token} was never sent or already answered")
            while token not in self._answers:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._pending.discard(token)
                    raise ToolFailed(f"gdb did not answer {command!r} within {t:g} s")
                if not self.read(min(READ_SLICE, remaining), on_record) and self._proc.poll() is not None:
                    self._pending.discard(token)
                    raise ToolFailed(f"gdb exited (status {self._proc.returncode}) while running {command!r}")
            rec, console, log = self._answers.pop(token)
        return result_of(rec, command, console, log)

    def request(self, command: str, timeout: float | None = None, on_record: OnRecord | None = None) -> MiResult:
        """Send one MI command and wait for the result record of its own token.

        Raises GdbCommandError on ``^error``, ToolFailed on timeout or if gdb died, ValueError
        for a command this connection refuses.
        """
        with self._lock:
            (token,) = self.send(command)
            return self.wait(token, command, timeout, on_record)

    def read(self, seconds: float, on_record: OnRecord | None = None) -> int:
        """Read what gdb printed within ``seconds`` (returns as soon as something arrived);
        answers are kept for their wait, other records go to ``on_record``. Returns how many
        records were read. Raises OSError/ValueError if the pipe is gone."""
        with self._lock:
            records = self._io.get_gdb_response(timeout_sec=max(0.0, seconds), raise_error_on_timeout=False)
            for rec in records:
                self._take(rec, on_record)
            return len(records)

    def _take(self, rec: dict, on_record: OnRecord | None) -> None:
        kind, payload = rec.get("type"), rec.get("payload")
        if kind == "console" and isinstance(payload, str):
            self._console.append(payload)
        elif kind == "log" and isinstance(payload, str):
            self._log.append(payload)
        elif kind == "result":
            # gdb answers in order: the stream output since the previous answer belongs to this one
            stream = (rec, "".join(self._console), "".join(self._log))
            self._console.clear()
            self._log.clear()
            token = rec.get("token")
            if token in self._pending:
                self._pending.discard(token)
                self._answers[token] = stream
            # else: the late answer of a request that timed out, nobody waits for it -> dropped
        elif on_record is not None:
            on_record(rec)

    # ------------------------------------------------------------------ shutdown
    def quit(self, timeout: float = 2.0) -> None:
        """Stop gdb: ``-gdb-exit``, then SIGTERM (gdb detaches on it), then SIGKILL; its pipes
        closed. Safe to call twice; never raises for a gdb already gone."""
        if self._closed:
            return
        self._closed = True
        proc = self._proc
        try:
            if proc.poll() is None:
                with contextlib.suppress(OSError, ValueError):  # pipe already gone: terminate/kill below
                    self._io.write("-gdb-exit", read_response=False, timeout_sec=0.5)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    stop_child(proc, timeout)
        finally:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):  # closing a broken pipe: nothing left to flush
                        stream.close()
