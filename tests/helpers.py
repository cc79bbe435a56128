"""What tests share: waiting on a condition (never a fixed sleep), the text a widget shows, ports.

Test modules import from here (and from conftest's fixtures), never from each other.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def wait_for(cond: Callable[[], object], timeout: float = 10.0, what: str | Callable[[], str] = "condition",
             step: float = 0.05):
    """Poll ``cond`` until it returns something truthy (returned); AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
        time.sleep(step)


async def wait_for_pilot(pilot, cond: Callable[[], object], timeout: float = 10.0,
                         what: str | Callable[[], str] = "condition", step: float = 0.05) -> None:
    """As wait_for, inside a Textual pilot test: the app keeps running between polls."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
        await pilot.pause(step)


def text_of(widget) -> str:
    """What a Static-like widget shows, as plain text (Rich renderables printed at a wide width)."""
    from rich.console import Console

    content = widget.content if hasattr(widget, "content") else widget.render()
    if isinstance(content, str):
        return content
    with open("/dev/null", "w") as sink:
        console = Console(width=250, record=True, file=sink)
        console.print(content)
        return console.export_text()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
