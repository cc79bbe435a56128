"""Hostile text in the TUI: target names, and what the user types, are shown as text.

Pilot tests type markup into the Memory and Watch inputs (the refusal toast shows it literally)
and run the whole app on a hostile target; a tmux test runs `hftmem attach` on it in a real
terminal, visits every pane, and checks that no byte of the target's escapes reached the terminal.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Input, Static

from hftmem_tui.feeds.sampler import LiveSampler
from hftmem_tui.services import LiveServices, MemoryReader
from hftmem_tui.ui.app import HftmemApp
from hftmem_tui.ui.audit_pane import AuditPanel
from hftmem_tui.ui.header import TargetHeader
from hftmem_tui.ui.memory_pane import MemoryPanel
from hftmem_tui.ui.row_table import RowTable
from hftmem_tui.ui.safe import cell, notify_plain, plain
from hftmem_tui.ui.watch_pane import WatchPane
from tests.conftest import proc_status, stop_process
from tests.helpers import Tmux, attach_command, text_of, wait_for_pilot
from tests.hostile import BAD_UTF8, COMM, THREADS, start_hostile

TYPED = ("[/]", "[bold red]x", "[link=file:/]a")


def make_app(pid: int, smaps_every: int = 4) -> HftmemApp:
    """The App on a live sampler of ``pid`` and its live services (as tests/ui/test_watch_pane.py)."""
    sampler = LiveSampler(pid, interval_s=0.25, smaps_every=smaps_every, perf=False)
    return HftmemApp(sampler, services=LiveServices(sampler.start()), refresh_s=0.25)


@pytest.fixture
def hostile_pid(tmp_path):
    proc, _ = start_hostile(tmp_path)
    yield proc.pid
    proc.stdin.close()
    stop_process(proc.pid)


def toasts(app: App) -> list[str]:
    """What the toasts on screen say (title and message), as plain text."""
    return [str(t.render()) for t in app.screen.query("Toast")]


def test_plain_never_parses_markup_and_escapes_controls():
    for s in ("[/]", "[bold red]x", "enabled [madvise], defrag [madvise]", "[heap]", "[N]"):
        assert plain(s).plain == s and not plain(s).spans
        assert cell(s).plain == s
    assert plain("a\x1b[2Jb\nc\u202e").plain == "a\\x1b[2Jb\nc\\u202e"
    assert cell("a\nb").plain == "a\\x0ab"
    assert plain("x", "bold").style == "bold"


class Toasting(App):
    def compose(self) -> ComposeResult:
        yield Static(id="box")


async def test_notify_plain_shows_markup_and_escapes_literally():
    app = Toasting()
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        notify_plain(app, "growing: [heap] [/] \x1b]0;t\x07", title="[bold]t")
        await wait_for_pilot(pilot, lambda: toasts(app))
        assert toasts(app) == ["[bold]t\ngrowing: [heap] [/] \\x1b]0;t\\x07"]


class HexApp(App):
    def __init__(self, pid: int) -> None:
        super().__init__()
        self.pid = pid

    def compose(self) -> ComposeResult:
        yield MemoryPanel(MemoryReader(self.pid))


async def test_memory_input_refusal_shows_typed_markup(hostile_pid):
    app = HexApp(hostile_pid)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        panel = app.query_one(MemoryPanel)
        for text in (*TYPED, "a;[/]"):  # the last is refused naming what is allowed: "... and '[N]'"
            panel.query_one("#hex-input", Input).focus()
            panel.query_one("#hex-input", Input).value = ""
            await pilot.press(*text, "enter")
            await wait_for_pilot(pilot, lambda t=text: any(t in s for s in toasts(app)), timeout=15)
            assert text in panel.status
            assert text in text_of(panel.query_one("#hex-status", Static))
        assert any("'[N]' are allowed" in s for s in toasts(app))  # brackets kept, not eaten as markup


async def test_watch_input_refusal_shows_typed_markup(hostile_pid):
    app = make_app(hostile_pid)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await pilot.press("8")
        pane = app.query_one(WatchPane)
        for text in TYPED:
            await pilot.press("slash")
            target = pane.query_one("#watch-target", Input)
            target.value = ""
            await pilot.press(*text, "enter")
            await wait_for_pilot(pilot, lambda t=text: t in text_of(pane.query_one("#watch-notice", Static)), timeout=15)
            assert any(text in s for s in toasts(app))
        await pilot.press("q")
    assert proc_status(hostile_pid)["TracerPid"] == "0"


async def test_app_on_a_hostile_target_shows_names_as_text(hostile_pid):
    app = make_app(hostile_pid, smaps_every=1)
    async with app.run_test(size=(160, 40), notifications=True) as pilot:
        await wait_for_pilot(pilot, lambda: app.last_sample is not None, timeout=15)
        assert "\\x1b]0;pwned\\x07" in text_of(app.query_one(TargetHeader))
        await pilot.press("7")  # the audit: its busy-threads cell names "[/]" and "[bold red]x"
        await wait_for_pilot(pilot, lambda: app.audit_runs > 0, timeout=20)
        table = app.query_one(AuditPanel).query_one(DataTable)
        evidence = " ".join(str(table.get_cell(k.value, "evidence")) for k in table.rows)
        assert all(t in evidence for t in THREADS), evidence
        await pilot.press("2")
        await wait_for_pilot(pilot, lambda: app.query_one("#mappings-table", RowTable).row_count > 0, timeout=15)
        names = [app.query_one("#mappings-table", RowTable).get_row_at(i)[5].plain
                 for i in range(app.query_one("#mappings-table", RowTable).row_count)]
        assert "]a\\x1b[?1049l" in names and "bad\\xff\\xfe\\x9b[31m\\u202ename" in names, names
        for key in "13456789":
            await pilot.press(key)
            await pilot.pause(0.1)
        await pilot.press("q")
    assert COMM.encode() == open(f"/proc/{hostile_pid}/comm", "rb").read().rstrip(b"\n")
    assert BAD_UTF8


# Bytes of the target's names that must never reach the terminal as they are.
RAW_FORBIDDEN = (b"\x1b]0;pwned", b"pwned\x07", b"\x1b[2J[/]", b"]a\x1b[?1049l", b"\xff\xfe", b"\xe2\x80\xae",
                 b"\x9b[31m")


def wait_screen(t: Tmux, predicate, timeout: float) -> str:
    """The tmux screen once ``predicate(screen)`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate(screen := t.screen()):
        assert time.monotonic() < deadline, f"condition not met in {timeout} s:\n{screen}"
        time.sleep(0.1)
    return screen


# What each pane 1-9 shows once it is up (a key sent before that could land in the pane's input).
PANE_TEXT = ("RSS history", "Kbytes", "history", "hftmem demo engine", "max loop gap", "cursor  ??", "readiness",
             "backend perf", "allocation alarms")


def show_pane(t: Tmux, n: int) -> str:
    """Press ``n`` and wait until pane ``n`` is up and settled; the screen then."""
    for attempt in range(3):
        t.keys(str(n))
        try:
            screen = t.wait_for(PANE_TEXT[n - 1], timeout=4)
            break
        except AssertionError:  # the key was lost to a late focus of the previous pane (an app.py race)
            if attempt == 2:
                raise
    # A key sent while the pane still settles its focus can land in another pane's input.
    settle(t)
    return t.wait_for(PANE_TEXT[n - 1], timeout=10)


def settle(t: Tmux) -> None:
    """Wait for the header's next redraw: the keys sent before it have been handled."""
    head = t.screen().splitlines()[0]
    wait_screen(t, lambda text: text.splitlines()[0] != head, timeout=10)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")
def test_attach_in_a_real_terminal_sends_none_of_the_targets_escapes(hostile_pid, tmp_path):
    raw = tmp_path / "pane.raw"
    go = tmp_path / "go"
    # hftmem starts once the pane's raw output is piped to the file (a condition, not a sleep).
    script = tmp_path / "attach.sh"
    script.write_text(f"while [ ! -e {go} ]; do sleep 0.05; done\nexec {attach_command(hostile_pid, '--refresh', '0.5')}\n")
    t = Tmux(f"sh {script}", width=160, height=40)
    try:
        subprocess.run([*t.base, "pipe-pane", "-o", "-t", t.name, f"cat >> {raw}"], check=True)
        title = subprocess.run([*t.base, "display", "-p", "-t", t.name, "#{pane_title}"], capture_output=True,
                               text=True, check=True).stdout
        go.touch()
        t.wait_for(f"pid {hostile_pid}", "\\x1b]0;pwned\\x07", timeout=30)
        # The panes without a focus target first: reached from a pane whose table or input has the focus,
        # the focus stays there and pulls the tabs back (an app.py bug, noted; not this test's subject).
        deadline = time.monotonic() + 15
        for n in (1, 3, 4, 5):
            show_pane(t, n)
        key = 0
        while time.monotonic() < deadline:  # the others, over and over, while samples and audits arrive
            screen = show_pane(t, (2, 6, 7, 8)[key % 4])
            key += 1
            assert "EXITED" not in screen and "Traceback" not in screen, screen
        show_pane(t, 2)
        for typed, shown in (("1049", "]a\\x1b[?1049l"), ("bad", "bad\\xff\\xfe\\x9b[31m\\u202e")):  # cut at the column width
            t.keys("/")  # the filter: the hostile files map no page, they sort last
            settle(t)
            t.keys(typed, "Enter")
            t.wait_for(shown, timeout=10)
            t.keys("Escape")
            settle(t)
        show_pane(t, 7)
        t.wait_for("[/]", "[bold red]x", timeout=15)  # the audit's busy-threads cell, brackets and all
        show_pane(t, 9)
        t.wait_for("measured on this machine", timeout=15)  # the pane checked the probes can go on
        t.keys("s")  # probes on: the table lists the threads "[/]" and "[bold red]x"
        t.wait_for("probes ON", *THREADS, timeout=20)
        t.keys("b")  # the busiest threads, named in a toast (or "no suggestion yet")
        t.keys("q")
        t.wait_for("EXITED 0", timeout=15)
        after = subprocess.run([*t.base, "display", "-p", "-t", t.name, "#{pane_title}"], capture_output=True,
                               text=True, check=True).stdout
        assert after == title  # the comm did not set the window title
    finally:
        t.kill()
    out = raw.read_bytes()
    assert b"pid " in out  # the capture worked
    found = [b for b in RAW_FORBIDDEN if b in out]
    assert not found, found
    status = proc_status(hostile_pid)
    assert status["TracerPid"] == "0" and not status["State"].startswith(("T", "t", "Z"))
