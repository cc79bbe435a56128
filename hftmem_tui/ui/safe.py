"""The one path outside text takes into a widget: Rich ``Text`` (never markup), escaped by ``visible()``.

Textual parses a ``str`` handed to ``Static.update``, ``Static(...)``, ``Label``, a ``DataTable``
cell or ``notify()`` as markup: a thread named ``[/]`` raises MarkupError, ``[madvise]`` vanishes,
``[link=...]`` becomes a live link. And Rich passes ESC through to the terminal. Text from the target,
a file or the user enters the UI through ``plain()`` (widgets, cells) or ``notify_plain()`` (toasts).
"""

from __future__ import annotations

from rich.style import StyleType
from rich.text import Text
from textual.app import App

from hftmem_tui.textsafe import visible


def plain(s: object, style: StyleType = "") -> Text:
    """``s`` (made a ``str``) as a ``Text`` in ``style``: never parsed as markup, controls shown escaped.

    Line breaks are kept (messages hftmem composes have several lines); escape a name with
    ``visible()`` first when it must stay on one line. Never raises.
    """
    return Text(visible(str(s), newlines=True), style=style)


def notify_plain(app: App, message: object, *, title: object = "", **kwargs) -> None:
    """``app.notify`` with ``message`` and ``title`` shown as text (no markup, controls escaped).

    Thread-safe like ``App.notify``; ``kwargs`` are its ``severity`` and ``timeout``.
    """
    app.notify(visible(str(message), newlines=True), title=visible(str(title)), markup=False, **kwargs)


def cell(s: object, style: StyleType = "") -> Text:
    """``s`` for a one-line ``DataTable`` cell: like ``plain()``, laid out as the table lays out a ``str``.

    (The table turns a ``str`` cell into ``Text.from_markup(s, end="")`` with no wrapping; this is
    the same without the markup, so an ordinary name looks exactly as before.) Never raises.
    """
    return Text(visible(str(s)), style=style, end="", no_wrap=True)
