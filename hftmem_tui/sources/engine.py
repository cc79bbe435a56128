"""The native demo engine: find (or build) its binary, start it, and talk to its control socket.

The engine serves a line protocol on an abstract UNIX socket ``@hftmem-engine-<pid>``
(no file is left in /tmp). Talking to it never touches the engine's hot path: the
socket is served by its own thread.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from hftmem_tui.engine_abi import SCENARIOS
from hftmem_tui.sources import procfs
from hftmem_tui.sources.paths import cache_root
from hftmem_tui.sources.process import die_with_parent as _kill_with_parent
from hftmem_tui.errors import EngineError, NoSuchProcess, NotAnEngine, ToolFailed, ToolMissing

ENGINE_BINARY = "hftmem-engine"


CONTROL_TIMEOUT_S = 2.0


def control_name(pid: int) -> str:
    """The default abstract socket name of the engine with this pid (without the leading NUL)."""
    return f"hftmem-engine-{pid}"


def check_scenario(name: str) -> str:
    """Return ``name`` if it is a scenario; raise EngineError naming the valid ones otherwise."""
    if name not in SCENARIOS:
        raise EngineError(f"unknown scenario '{name}' (known: {', '.join(SCENARIOS)})")
    return name


# --------------------------------------------------------------------------- binary


def source_dir() -> Path | None:
    """The native/ source tree when running from a checkout (editable install), else None."""
    candidate = Path(__file__).resolve().parents[2] / "native"
    return candidate if (candidate / "CMakeLists.txt").is_file() else None


def _installed_binary() -> Path | None:
    # scikit-build-core installs the engine into the scripts dir, beside the `hftmem` command.
    dirs = [Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))]
    for d in dirs:
        p = d / ENGINE_BINARY
        if p.is_file() and os.access(p, os.X_OK):
            return p
    found = shutil.which(ENGINE_BINARY)
    return Path(found) if found else None


def _sources_digest(src: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(src.rglob("*")):
        if p.is_file() and p.suffix in {".h", ".hpp", ".cpp", ".cc", ".txt", ".cmake"}:
            h.update(str(p.relative_to(src)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def build_engine(src: Path | None = None, *, sanitize: bool = False, tests: bool = False,
                 build_dir: Path | None = None, timeout: float = 600.0) -> Path:
    """Build the engine from ``src`` with CMake (incremental, locked against parallel builds).

    Returns the build directory. Raises ToolMissing (cmake, g++) or ToolFailed (a build error,
    with the compiler's last line).
    """
    src = src or source_dir()
    if src is None:
        raise ToolFailed("no native/ sources found to build the engine from; reinstall hftmem")
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise ToolMissing(tool, hint="apt-get install cmake g++")
    if build_dir is None:
        flavour = ("asan-" if sanitize else "") + ("tests-" if tests else "")
        build_dir = cache_root() / f"engine-{flavour}{_sources_digest(src)}"
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        configure = ["cmake", "-S", str(src), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                     f"-DHFTMEM_SANITIZE={'ON' if sanitize else 'OFF'}",
                     f"-DHFTMEM_BUILD_TESTS={'ON' if tests else 'OFF'}"]
        for cmd in (configure, ["cmake", "--build", str(build_dir), "-j2"]):
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise ToolFailed(f"building the engine timed out after {timeout:.0f} s") from None
            if proc.returncode != 0:
                out = (proc.stderr + proc.stdout).strip().splitlines()
                errors = [ln for ln in out if "error" in ln.lower()]
                raise ToolFailed(f"building the engine failed: {(errors or out or ['no output'])[0].strip()}")
    return build_dir


def find_engine(*, build: bool = True) -> Path:
    """Path of the engine binary: $HFTMEM_ENGINE, the installed one, or one built from native/.

    Raises ToolFailed/ToolMissing when none exists and it cannot be built.
    """
    env = os.environ.get("HFTMEM_ENGINE")
    if env:
        p = Path(env)
        if not (p.is_file() and os.access(p, os.X_OK)):
            raise ToolFailed(f"HFTMEM_ENGINE={env} is not an executable file")
        return p
    installed = _installed_binary()
    if installed is not None:
        return installed
    if not build:
        raise ToolFailed("the demo engine is not built; run `pip install .` in the hftmem checkout")
    return build_engine() / ENGINE_BINARY


# --------------------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """What the engine's control socket says about itself."""

    pid: int
    scenarios: frozenset[str]
    ticks: int
    messages: int


def start_engine(scenarios: list[str] | tuple[str, ...] = (), *, spin: bool = False,
                 tick_rate: int | None = None, control: str | None = None,
                 binary: Path | None = None, ready_timeout: float = 10.0,
                 die_with_parent: bool = False) -> subprocess.Popen:
    """Start the engine in its own session (it outlives us) and wait until its control socket answers.

    With ``die_with_parent`` the kernel SIGKILLs the engine when the calling *thread* dies
    (PR_SET_PDEATHSIG): call it from a thread that lives as long as the engine should (the main one).
    Raises EngineError with the engine's own message if it exits during start-up.
    """
    for s in scenarios:
        check_scenario(s)
    binary = binary or find_engine()
    cmd = [str(binary)]
    for s in scenarios:
        cmd += ["--scenario", s]
    if spin:
        cmd.append("--spin")
    if tick_rate is not None:
        cmd += ["--tick-rate", str(tick_rate)]
    if control is not None:
        cmd += ["--control", control]
    # stderr is a pipe only until start-up is confirmed: then we close our end (the engine ignores SIGPIPE).
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
                            preexec_fn=_kill_with_parent if die_with_parent else None)
    name = control or control_name(proc.pid)
    deadline = time.monotonic() + ready_timeout
    try:
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace").strip().splitlines() if proc.stderr else []
                raise EngineError(err[-1] if err else f"the engine exited with status {proc.returncode} during start-up")
            try:
                # Another engine may already own this name: ready means *our* engine answers.
                if EngineControl(proc.pid, name=name, timeout=0.5).status().pid == proc.pid:
                    return proc
                raise EngineError("another engine answers on this control socket")
            except (NotAnEngine, EngineError):
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait(timeout=5)
                    raise EngineError(f"the engine did not answer on @{name} within {ready_timeout:.0f} s") from None
                time.sleep(0.02)
    finally:
        if proc.stderr is not None:
            proc.stderr.close()


class EngineControl:
    """Client of one engine's control socket. Each call is one request line and one reply line."""

    def __init__(self, pid: int, *, name: str | None = None, timeout: float = CONTROL_TIMEOUT_S) -> None:
        self.pid = pid
        self.name = name or control_name(pid)
        self.timeout = timeout

    # A full engine frees a slot within 250 ms (its idle slots go to newcomers): retry this often.
    BUSY_RETRY_S = 0.05

    def request(self, line: str) -> str:
        """Send one request; return the reply's text after ``ok ``.

        An ``ERR busy`` reply is retried until ``timeout``. Raises EngineError on ``error`` and on
        the engine's connection-level ``ERR`` refusals (another uid, still busy), NotAnEngine when
        nothing (or no engine) answers.
        """
        deadline = time.monotonic() + self.timeout
        reply = self._exchange(line)
        while reply.startswith("ERR busy") and time.monotonic() + self.BUSY_RETRY_S < deadline:
            time.sleep(self.BUSY_RETRY_S)
            reply = self._exchange(line)
        if reply.startswith("ok"):
            return reply[2:].strip()
        if reply.startswith("error"):
            raise EngineError(f"engine {self.pid}: {reply[5:].strip()}")
        if reply.startswith("ERR "):
            # The engine refused the connection itself (refused, busy, idle, timeout) and closed it.
            kind, _, why = reply[4:].partition(":")
            said = {"refused": "refused this client", "busy": "is busy"}.get(kind.strip(), kind.strip())
            raise EngineError(f"engine {self.pid} {said}: {why.strip()}")
        raise NotAnEngine(f"process {self.pid}: unexpected reply on @{self.name}: {reply[:80]!r}")

    def _exchange(self, line: str) -> str:
        # One connection: the request line out, the reply line (stripped) back.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            try:
                sock.connect("\0" + self.name)
            except OSError as e:
                if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
                    if not procfs.process_alive(self.pid):
                        raise NoSuchProcess(self.pid) from None
                    raise NotAnEngine(f"process {self.pid} is not a hftmem demo engine "
                                      f"(nothing listens on @{self.name})") from None
                raise EngineError(f"cannot reach the engine's control socket @{self.name}: {e.strerror}") from None
            try:
                sock.sendall(line.encode() + b"\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused and closed at accept: its one-line reason is still ours to read
            buf = b""
            while not buf.endswith(b"\n"):
                try:
                    chunk = sock.recv(4096)
                except ConnectionResetError:
                    break  # closed with our request unread (a refusal): the reason came first
                if not chunk:
                    break
                buf += chunk
        except socket.timeout:
            raise EngineError(f"the engine on @{self.name} did not answer within {self.timeout:.1f} s") from None
        finally:
            sock.close()
        return buf.decode(errors="replace").strip()

    def status(self) -> EngineStatus:
        fields = dict(kv.split("=", 1) for kv in self.request("status").split() if "=" in kv)
        names = fields.get("scenarios", "-")
        return EngineStatus(
            pid=int(fields.get("pid", self.pid)),
            scenarios=frozenset() if names in ("", "-") else frozenset(names.split(",")),
            ticks=int(fields.get("ticks", 0)),
            messages=int(fields.get("messages", 0)),
        )

    def scenarios(self) -> tuple[str, ...]:
        return tuple(self.request("list").split())

    def set_scenario(self, name: str, on: bool) -> None:
        check_scenario(name)
        self.request(f"{'on' if on else 'off'} {name}")
