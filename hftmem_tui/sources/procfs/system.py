"""System-wide /proc files (kernel settings, meminfo) and hftmem's own (self/status, self/mounts).

A missing or unreadable system file is None (a kernel without that feature), never an error.
"""

from __future__ import annotations

import re

from hftmem_tui.sources.procfs.core import PROCFS


def read_system(name: str, procfs: str = PROCFS) -> str | None:
    """A system-wide /proc file (``sys/kernel/perf_event_paranoid``, ``meminfo``, ``self/status``),
    stripped; None when it does not exist or cannot be read (a kernel without that feature)."""
    try:
        with open(f"{procfs}/{name}", "rb") as f:
            return f.read().decode("utf-8", "surrogateescape").strip()
    except OSError:
        return None


def read_system_int(name: str, procfs: str = PROCFS) -> int | None:
    """A system-wide /proc file holding one integer (ptrace_scope, perf_event_paranoid), or None
    when it is missing or not an integer."""
    text = read_system(name, procfs)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def boot_id(procfs: str = PROCFS) -> str:
    """This boot's id (sys/kernel/random/boot_id), "" when unavailable: keys per-boot caches."""
    return read_system("sys/kernel/random/boot_id", procfs) or ""


def own_cap_effective(procfs: str = PROCFS) -> int:
    """hftmem's own effective capability mask (CapEff of /proc/self/status), 0 when unreadable."""
    for line in (read_system("self/status", procfs) or "").split("\n"):
        if line.startswith("CapEff:"):
            try:
                return int(line.split(":", 1)[1].strip(), 16)
            except ValueError:
                return 0
    return 0


def own_mounts(procfs: str = PROCFS) -> tuple[tuple[str, str, str], ...]:
    """(device, mount point, fs type) of each line of /proc/self/mounts (octal escapes decoded)."""
    out = []
    for line in (read_system("self/mounts", procfs) or "").split("\n"):
        parts = line.split()
        if len(parts) >= 3:
            out.append(tuple(_unescape_mount(p) for p in parts[:3]))
    return tuple(out)


def _unescape_mount(field: str) -> str:
    # /proc/self/mounts writes space, tab, newline and backslash as \040 \011 \012 \134.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)

