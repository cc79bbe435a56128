"""A target's services, handed to the TUI in one object: live on a pid, or refused on a recording.

The App and its panes never reach the OS themselves. What they may ask of their target is here:
a zero-stop memory reader (bytes at an address, symbols resolved on the executable file), a
watch controller, the allocation probes, the readiness facts, and the demo engine's control
socket. :class:`LiveServices` serves a running process; :class:`RecordedServices` serves a
replay, where the recorded pid may be another process by now, so every request is refused in
one place (``RecordedServices._refuse``) with a :class:`NotLive` naming the feature asked for.

Every factory is cheap and does no I/O: the services start work only when used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from hftmem_tui.errors import SourceError
from hftmem_tui.probes import AllocProbes, thread_cpu_ticks
from hftmem_tui.sources.engine import EngineControl
from hftmem_tui.sources.memory import read_memory
from hftmem_tui.sources.perf.calibration import cost_per_call
from hftmem_tui.sources.perf.uprobes import find_tracefs
from hftmem_tui.sources.readiness import HistorySample, ReadinessFacts, read_facts
from hftmem_tui.sources.symbols import SymbolTable, check_symbol_expr
from hftmem_tui.watch.controller import FirstHitWatch, WatchController

if TYPE_CHECKING:
    from hftmem_tui.feeds.sample import TargetInfo

__all__ = ["AllocProbeControl", "FactsReader", "LiveServices", "Located", "MemoryReader", "NotLive",
           "RecordedServices", "TargetServices", "offered"]

T = TypeVar("T")
FactsReader = Callable[[Sequence[HistorySample]], ReadinessFacts]

# Why a recording refuses, per feature; the pane or the title says which feature. The wording of
# the memory, audit, watch and allocs lines is what those panes have always shown on a replay
# (tests/ui/__snapshots__ pin it).
REFUSALS = {
    "memory": "needs a live process (this is a recording; use `hftmem attach PID` or `hftmem dump PID ADDR` "
              "on a running one)",
    "audit": "needs a live process (this is a recording)",
    "watch": "unavailable in a recording (they need a live process: `hftmem attach PID`, or "
             "`hftmem watch PID SYMBOL` headless)",
    "allocs": "unavailable in a recording (uprobes need a live process: `hftmem attach PID`, or "
              "`hftmem allocs PID` headless)",
    "engine": "needs a live engine (this is a recording; `hftmem demo` runs one)",
}


class NotLive(SourceError):
    """A recording's services refuse every request: the recorded pid may be another process by now.

    ``feature`` is what was asked for (a key of REFUSALS); the message says why and what to run instead.
    """

    def __init__(self, feature: str) -> None:
        super().__init__(REFUSALS[feature])
        self.feature = feature


def offered(make: Callable[[], T]) -> T | NotLive:
    """``make()``'s service, or the recording's refusal (a pane shows it in the service's place)."""
    try:
        return make()
    except NotLive as e:
        return e


@dataclass(frozen=True)
class Located:
    """Where a typed expression lives in the target: its address, and the symbol it is inside."""

    address: int
    symbol: str
    symbol_start: int


class MemoryReader:
    """Zero-stop reads of one process's memory (process_vm_readv) and symbols of its executable
    file (gdb on the file, never on the process). The symbol table opens on the first ``locate``;
    ``close()`` stops its gdb (a later ``locate`` opens it again)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._table: SymbolTable | None = None

    @staticmethod
    def check(text: str) -> None:
        """The expression guard (names, '.', '::', '[N]' only), no I/O. Raises InvalidExpression."""
        check_symbol_expr(text)

    def locate(self, text: str) -> Located:
        """Where the global, member or element ``text`` (``sym.field``, ``sym.arr[3]``) is in the process.

        Raises InvalidExpression, SymbolNotFound, NoDebugInfo, ToolMissing/ToolFailed (gdb),
        NoSuchProcess, AccessDenied.
        """
        if self._table is None:
            self._table = SymbolTable.for_pid(self.pid)
        resolved = self._table.resolve_expr(text)
        address = self._table.runtime_address(resolved, self.pid)
        return Located(address, resolved.symbol.name, address - resolved.offset)

    def read(self, address: int, length: int) -> bytes:
        """``length`` bytes at ``address``, the process running on. Raises NoSuchProcess,
        ZombieProcess, AccessDenied, UnmappedAddress (``first_unreadable`` names the first bad byte)."""
        return read_memory(self.pid, address, length)

    def close(self) -> None:
        """Stop the symbol table's gdb, if one was started. Safe to call twice."""
        table, self._table = self._table, None
        if table is not None:
            table.close()


class AllocProbeControl:
    """The allocation probes of one process (uprobes, opt-in, no ptrace) and what they cost."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def check(self) -> float | None:
        """What one probed call costs the target, in seconds (None when not measurable), once
        uprobes are known to be possible here. Raises SourceError (no tracefs, not root)."""
        tracefs = find_tracefs()
        if not os.access(os.path.join(tracefs, "uprobe_events"), os.W_OK):
            raise SourceError("defining uprobes needs root (CAP_SYS_ADMIN): allocation alarms are off; "
                              "the rest of hftmem works without them")
        return cost_per_call()

    def open(self) -> AllocProbes:
        """Put the probes on (a context manager: closing removes them). Raises as AllocProbes does."""
        return AllocProbes(self.pid)

    def thread_cpu_ticks(self) -> dict[int, tuple[str, int]]:
        """tid -> (thread name, CPU ticks so far). Raises NoSuchProcess, AccessDenied."""
        return thread_cpu_ticks(self.pid)


class TargetServices:
    """What the TUI may ask of its target, in one object: :class:`LiveServices` or :class:`RecordedServices`.

    ``target``: who it is (the feed's TargetInfo). ``live``: whether requests reach the process.
    """

    live: bool

    def __init__(self, target: TargetInfo) -> None:
        self.target = target

    @property
    def pid(self) -> int:
        return self.target.pid

    def memory_reader(self) -> MemoryReader:
        """A zero-stop memory reader on the target (the caller closes it). Raises NotLive."""
        raise NotImplementedError

    def watch_controller(self) -> WatchController:
        """A watch controller on the target (the caller shuts it down). Raises NotLive."""
        raise NotImplementedError

    def first_hit_watch(self, target: str) -> FirstHitWatch:
        """A perf watchpoint on ``target`` until its first hit (the tour's watch key). Raises NotLive."""
        raise NotImplementedError

    def alloc_probes(self) -> AllocProbeControl:
        """The target's allocation probes (nothing is probed until ``open()``). Raises NotLive."""
        raise NotImplementedError

    def facts_reader(self) -> FactsReader:
        """``read(history) -> ReadinessFacts`` on the target (sources.readiness.read_facts). Raises NotLive."""
        raise NotImplementedError

    def engine_control(self) -> EngineControl:
        """The demo engine's control socket (scenario switches); NotAnEngine when nothing answers
        on it. Raises NotLive."""
        raise NotImplementedError


class LiveServices(TargetServices):
    """The services of a running process."""

    live = True

    def memory_reader(self) -> MemoryReader:
        return MemoryReader(self.pid)

    def watch_controller(self) -> WatchController:
        return WatchController(self.pid)

    def first_hit_watch(self, target: str) -> FirstHitWatch:
        return FirstHitWatch(self.pid, target)

    def alloc_probes(self) -> AllocProbeControl:
        return AllocProbeControl(self.pid)

    def facts_reader(self) -> FactsReader:
        return partial(read_facts, self.pid)

    def engine_control(self) -> EngineControl:
        return EngineControl(self.pid)


class RecordedServices(TargetServices):
    """The services of a recording: every request is refused (NotLive), here and only here."""

    live = False

    @staticmethod
    def _refuse(feature: str):
        raise NotLive(feature)

    def memory_reader(self) -> MemoryReader:
        return self._refuse("memory")

    def watch_controller(self) -> WatchController:
        return self._refuse("watch")

    def first_hit_watch(self, target: str) -> FirstHitWatch:
        return self._refuse("watch")

    def alloc_probes(self) -> AllocProbeControl:
        return self._refuse("allocs")

    def facts_reader(self) -> FactsReader:
        return self._refuse("audit")

    def engine_control(self) -> EngineControl:
        return self._refuse("engine")
