"""Outside text made safe to show: control characters and undecodable bytes become visible escapes.

Every string from the target (comm, thread names, mapped file names, exe paths, values), from a
file (recordings, TOML) or from the user reaches a terminal through ``visible()``: the TUI's one
helper (ui/safe.py ``plain``) and the CLI's text output both call it. What it escapes:

- C0 controls U+0000-001F (ESC included), DEL U+007F and C1 controls U+0080-009F -> ``\\x1b``;
- bidi embeddings/overrides/isolates U+202A-202E, U+2066-2069 and the marks U+200E, U+200F,
  U+061C, plus the line/paragraph separators U+2028, U+2029 -> ``\\u202e``;
- a lone surrogate U+DC80-DCFF (a byte that was not UTF-8, decoded with ``surrogateescape``)
  -> the byte, ``\\xff``; any other lone surrogate -> ``\\udXXX``.

Everything else, including backslashes, is left as it is: ordinary names look unchanged. The result
is for reading, not reversible (``abc\\x1b`` may have been typed); ``--json`` output keeps the exact
value instead: ``json.dumps`` escapes controls, and a surrogateescape'd byte stays the JSON string
escape ``\\udcff``, which ``json.loads(...).encode("utf-8", "surrogateescape")`` turns back into
the original bytes.
"""

from __future__ import annotations

import re

# One class of everything a terminal could take as a command or that cannot be encoded.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_KEEP_NEWLINES = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    c = ord(match.group())
    if c <= 0xFF:
        return f"\\x{c:02x}"
    if 0xDC80 <= c <= 0xDCFF:
        return f"\\x{c - 0xDC00:02x}"  # surrogateescape: the undecodable byte itself
    return f"\\u{c:04x}"


def visible(s: str, *, newlines: bool = False) -> str:
    """``s`` with every control character, bidi control and lone surrogate as a visible escape.

    With ``newlines=True`` a ``\\n`` is kept as a line break (for messages hftmem composes of
    several lines); names keep the default, so a name cannot forge an output line. Pure; never
    raises for any ``str``; a string with nothing to escape is returned as it is.
    """
    pattern = _UNSAFE_KEEP_NEWLINES if newlines else _UNSAFE
    if pattern.search(s) is None:  # the common case: no copy
        return s
    return pattern.sub(_escape, s)


def visible_bytes(b: bytes) -> str:
    """Raw bytes (e.g. a name read from /proc as bytes) decoded losslessly and made ``visible()``."""
    return visible(b.decode("utf-8", "surrogateescape"))
