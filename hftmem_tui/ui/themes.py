"""hftmem's own theme: 16 ANSI colours only, for the Linux console and ``TERM=screen``.

Textual's built-in themes stay in the command palette ("Change theme"); this one is added beside
them and chosen at start on a terminal that has only 16 colours. Meaning is carried by the ANSI
base colours (app.tcss): red gone/failing, yellow growing/paused, green fine.
"""

from __future__ import annotations

import os

from textual.app import App
from textual.theme import Theme

ANSI_THEME = "hftmem-16"
SIXTEEN_COLOUR_TERMS = ("linux", "screen", "vt100", "vt220", "ansi", "cons25")  # not "xterm": most are 256+

HFTMEM_16 = Theme(
    name=ANSI_THEME,
    ansi=True,  # the terminal's own palette, no RGB anywhere
    dark=True,
    primary="ansi_blue",
    secondary="ansi_cyan",
    accent="ansi_cyan",
    warning="ansi_yellow",
    error="ansi_red",
    success="ansi_green",
    foreground="ansi_default",
    background="ansi_default",
    surface="ansi_default",
    panel="ansi_default",
    boost="ansi_default",
    variables={
        "ansi-background": "ansi_black",
        "ansi-foreground": "ansi_white",
        "border-blurred": "ansi_bright_black",
        "block-cursor-foreground": "ansi_black",
        "block-cursor-background": "ansi_cyan",
        "block-cursor-text-style": "bold",
        "input-cursor-background": "ansi_white",
        "input-cursor-foreground": "ansi_black",
        "input-selection-background": "ansi_blue",
        "input-selection-foreground": "ansi_bright_white",
        "screen-selection-background": "ansi_blue",
        "screen-selection-foreground": "ansi_bright_white",
        "footer-key-foreground": "ansi_bright_cyan",
        "footer-description-foreground": "ansi_default",
        "footer-background": "ansi_default",
        "footer-item-background": "ansi_default",
        "footer-key-background": "ansi_default",
        "text-muted": "ansi_bright_black",
    },
)


def sixteen_colours(environ=os.environ) -> bool:
    """True on a terminal that has only the 16 ANSI colours (the Linux console, plain ``screen``)."""
    term = environ.get("TERM", "")
    return term in SIXTEEN_COLOUR_TERMS and not environ.get("COLORTERM")


def register_themes(app: App) -> None:
    """Add hftmem's theme to ``app``, next to Textual's (all in the command palette)."""
    app.register_theme(HFTMEM_16)


def pick_theme(app: App) -> None:
    """Once running: hftmem's theme on a 16-colour terminal (never headless: tests and
    screenshots look the same whatever terminal runs them)."""
    if sixteen_colours() and not app.is_headless:
        app.theme = ANSI_THEME
