"""Removes a session's uprobe group from tracefs once that session is gone, even after a SIGKILL.

Run by UprobeGroup (uprobes.py) as ``python -I .../uprobe_guardian.py GROUP UPROBE_EVENTS`` with
its stdin on a pipe from the session: it waits for EOF there (the session closed it, or the
kernel did when the session died), then removes every probe of GROUP, retrying while the kernel
still holds the dead session's perf events (EBUSY). Standard library only: it must start and
work whatever state the rest of hftmem is in.
"""

from __future__ import annotations

import os
import signal
import sys
import time

RETRIES = 100
RETRY_S = 0.05  # EBUSY until the kernel has released the dead session's perf events


def group_events(text: str, group: str) -> list[str]:
    """``group/event`` names of the lines of uprobe_events in ``group``."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        name = fields[0].split(":", 1)[-1] if fields else ""
        if name.split("/", 1)[0] == group:
            out.append(name)
    return out


def remove_group(group: str, path: str) -> None:
    """Remove every probe of ``group`` from the uprobe_events file ``path``, retrying while busy."""
    for _ in range(RETRIES):
        try:
            with open(path) as f:
                mine = group_events(f.read(), group)
        except OSError:
            return
        if not mine:
            return
        for event in mine:
            try:
                # O_APPEND, never O_TRUNC: truncating would delete every probe on the machine.
                fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(fd, f"-:{event}\n".encode())
                finally:
                    os.close(fd)
            except OSError:
                pass
        time.sleep(RETRY_S)


def main(argv: list[str]) -> int:
    """Wait for EOF on stdin, then remove group ``argv[0]`` from uprobe_events file ``argv[1]``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    group, path = argv[0], argv[1]
    try:
        sys.stdin.buffer.read()
    except BaseException:  # noqa: BLE001 - whatever wakes us, the group must go
        pass
    remove_group(group, path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
