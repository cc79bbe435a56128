"""The help screen's key tables, built from the bindings themselves (one source of truth).

Footer, help and README show the same keys because all three come from the same ``Binding``
objects: the active app's own BINDINGS (attach, the tour's, replay's) and each pane's key table
(the BINDINGS of the widget that takes the keys in that pane). A key is shown as the footer
shows it (``App.get_key_display``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from hftmem_tui.ui.alloc_calls_pane import AllocsPane
from hftmem_tui.ui.mappings_pane import MappingTable
from hftmem_tui.ui.memory_pane import HexBody
from hftmem_tui.ui.watch_pane import WatchPane

HELP_WIDTH = 96  # the help box is at most 100 columns wide (app.tcss), minus its padding


@dataclass(frozen=True)
class KeyTable:
    """One line group of the help: a title, its bindings, and a note the bindings cannot say."""

    title: str
    bindings: tuple[Binding, ...]
    note: str = ""


# Per pane: the widget class whose BINDINGS are the pane's keys while it is shown.
PANE_KEYS: dict[str, KeyTable] = {
    "mappings": KeyTable("Mappings", tuple(MappingTable.BINDINGS),
                         "click a column header to sort by it; growing rows are yellow with ▲"),
    "memory": KeyTable("Memory", tuple(HexBody.BINDINGS), "arrows move the cursor; enter in the box jumps"),
    "watch": KeyTable("Watch", tuple(WatchPane.BINDINGS),
                      "enter arms (perf: zero-stop); gdb asks first: it pauses the engine; last disarm detaches"),
    "allocs": KeyTable("Allocs", tuple(AllocsPane.BINDINGS), "the cost per probed call is shown before any probe"),
}


def own_bindings(cls: type) -> tuple[Binding, ...]:
    """The bindings ``cls`` declares itself (not those it inherits)."""
    return tuple(b for b in cls.__dict__.get("BINDINGS", ()) if isinstance(b, Binding))


def key_names(app: App, binding: Binding) -> str:
    """Every key of ``binding`` as the footer shows it, space-separated ("u ⌫", "+ =")."""
    return " ".join(app.get_key_display(Binding(k.strip(), binding.action, binding.description,
                                                key_display=binding.key_display))
                    for k in binding.key.split(","))


def merged(bindings: Iterable[Binding]) -> dict[tuple[str, str], list[Binding]]:
    """(action, description) -> [bindings], in first-seen order: one help entry per action."""
    out: dict[tuple[str, str], list[Binding]] = {}
    for b in bindings:
        out.setdefault((b.action, b.description), []).append(b)
    return out


def entries(app: App, bindings: Iterable[Binding]) -> list[tuple[str, str]]:
    """(keys, description) pairs, bindings of one action merged, arrows folded into 'arrows'."""
    result = []
    for (action, description), group in merged(bindings).items():
        if action.startswith("move(") or action.startswith("show_index("):
            continue  # said once as 'arrows' (memory) or in the Panes line
        keys = " ".join(key_names(app, b) for b in group)
        result.append((keys, description))
    return result


def app_tables(app: App) -> list[KeyTable]:
    """The active app's own key groups: its class and every hftmem app class it derives from."""
    from hftmem_tui.ui.app import HftmemApp

    tables = []
    for cls in type(app).__mro__:
        if not (isinstance(cls, type) and issubclass(cls, HftmemApp)):
            continue
        title = getattr(cls, "HELP_SECTION", cls.__name__)
        tables.append(KeyTable(title, own_bindings(cls), cls.__dict__.get("HELP_NOTE", "")))
    tables.reverse()  # Anywhere (the base app) first, then what the demo or replay adds
    return tables


def wrap(title: str, items: list[str], width: int = HELP_WIDTH) -> Text:
    """``title`` padded to 10 columns, then the items, wrapped under each other."""
    out = Text()
    line = Text(f"{title:<10}", style="bold")
    # An item longer than a line is cut at words: no line of the help is wider than ``width``.
    items = [chunk for item in items for chunk in textwrap.wrap(item, max(20, width - 10))]
    for item in items:
        if line.cell_len + len(item) + 2 > width and line.plain.strip() != title:
            out.append_text(line)
            out.append("\n")
            line = Text(" " * 10)
        elif line.plain.strip() != title or line.cell_len > 10:
            line.append("  ")
        line.append(item)
    out.append_text(line)
    return out


def help_text(app, pane_ids: list[str], headline: str, width: int = HELP_WIDTH) -> Text:
    """The whole help screen of ``app`` (an HftmemApp): panes, each pane's keys, then the app's keys,
    wrapped at ``width`` columns."""
    lines = [Text(line, style="bold") for line in textwrap.wrap(headline, width)] + [Text("")]
    lines.append(wrap("Panes", [f"{i + 1} {p}" for i, p in enumerate(pane_ids[:9])] +
                      ["tab/shift+tab move between panes and widgets"], width))
    for pane in pane_ids:
        table = PANE_KEYS.get(pane)
        if table is not None:
            lines.append(wrap(table.title, [f"{k} {d}" for k, d in entries(app, table.bindings)] +
                              ([f"({table.note})"] if table.note else []), width))
    for table in app_tables(app):
        items = [f"{k} {d}" for k, d in entries(app, table.bindings)]
        if table.title == "Anywhere":
            items.append(f"{app.get_key_display(Binding(app.COMMAND_PALETTE_BINDING, ''))} command palette (themes too)")
        if table.note:
            items.append(f"({table.note})")
        if items:
            lines.append(wrap(table.title, items, width))
    lines += [Text(""), Text("Quitting never leaves the target stopped or traced."),
              Text("Press escape or ? to close.", style="dim")]
    return Text("\n").join(lines)


class HelpScreen(ModalScreen[None]):
    """The keys of the app that opened it (built from its bindings: keyhelp.help_text)."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close")]

    def __init__(self, text: Text) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):  # scrolls on a short terminal instead of losing its end
            yield Static(self.text, id="help-text")
