"""pytest plugin for .ci/run: on a root Debian machine a skipped test fails the run.

A skip there means something .ci/run should have set up (a package, tracefs, a pinned version)
and CI would be green without testing it. Only what the machine truly lacks and .ci/run cannot
install may skip: ALLOWED below, each entry checked against the machine, not just its reason.
Loaded with `-p skipgate` (PYTHONPATH=.ci); the README's plain test command does not gate.
The skips are listed before pytest's closing summary line, which stays the last line.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable

import pytest


def _kernel_lacks_uprobe_events() -> bool:
    # CONFIG_UPROBE_EVENTS off: tracefs is mounted (tests/conftest.py mounts it) but has no uprobe_events.
    with open("/proc/self/mounts") as f:
        mounts = [ln.split() for ln in f]
    tracefs = [m[1] for m in mounts if len(m) > 2 and m[2] == "tracefs"]
    return bool(tracefs) and not any(os.path.exists(os.path.join(d, "uprobe_events")) for d in tracefs)


def _cpu_lacks_perf_hardware_events() -> bool:
    # No PMU (many VMs): perf counts cycles as "<not supported>"; no package brings one.
    try:
        r = subprocess.run(["perf", "stat", "-x,", "-e", "cycles", "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "<not supported>" in r.stderr


# (reason pattern, check that this machine really lacks it). Add an entry only for a kernel
# feature or a CPU capability; anything apt-get, pip or a mount can provide belongs in .ci/run.
ALLOWED: tuple[tuple[str, str, Callable[[], bool]], ...] = (
    (r"^uprobes need root and (a mounted )?tracefs$", "a kernel without uprobe events",
     _kernel_lacks_uprobe_events),
    (r"perf hardware events? (are )?not supported", "a CPU without perf hardware events",
     _cpu_lacks_perf_hardware_events),
)


def allowed(reason: str, checks: dict[str, bool] | None = None) -> bool:
    """Whether a skip for ``reason`` is for something this machine truly lacks (checked once per entry)."""
    checks = {} if checks is None else checks
    for pattern, _, lacks in ALLOWED:
        if re.search(pattern, reason):
            if pattern not in checks:
                checks[pattern] = lacks()
            if checks[pattern]:
                return True
    return False


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason pytest gives for a skipped report (its longrepr is (file, line, reason))."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


class SkipGate:
    """Records every skip; fails the session if one is not for something the machine lacks."""

    def __init__(self) -> None:
        self.skips: list[tuple[str, str]] = []  # (node id, reason)
        self.refused: list[tuple[str, str]] = []
        self._checks: dict[str, bool] = {}

    def _record(self, report) -> None:
        if report.skipped and not hasattr(report, "wasxfail"):  # an xfail ran: not a skip
            self.skips.append((report.nodeid, skip_reason(report)))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)  # a module skipped as a whole at import

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.refused = [(n, r) for n, r in self.skips if not allowed(r, self._checks)]
        if self.refused and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.refused:
            return
        tr = terminalreporter
        tr.section("skipped on a root Debian machine (.ci/skipgate.py)", sep="=", red=True)
        for nodeid, reason in self.refused:
            tr.line(f"SKIP NOT ALLOWED {nodeid}: {reason}")
        tr.line(f"{len(self.refused)} skipped for something this machine can have: the run fails "
                f"(a skip may only say what it truly lacks: {'; '.join(what for _, what, _ in ALLOWED)})")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipGate(), "skipgate-gate")
