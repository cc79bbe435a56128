"""hftmem_tui.textsafe.visible(): every control, bidi control and undecodable byte shown as an escape; ordinary text unchanged."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hftmem_tui.textsafe import visible, visible_bytes

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


@pytest.mark.parametrize("s", ["", "hftmem-engine", "[heap]", "[/]", "[bold red]x", "enabled [madvise]",
                               "/usr/lib/libc.so.6 (deleted)", "naïve €", "日本語", "a\\x1b", "emoji 👍🏽"])
def test_ordinary_text_is_unchanged(s):
    assert visible(s) is s


@pytest.mark.parametrize("s, shown", [
    ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
    ("\x1b[2J[/][link=file:/]a", "\\x1b[2J[/][link=file:/]a"),
    ("a\nb\tc\rd", "a\\x0ab\\x09c\\x0dd"),
    ("\x00\x7f\x80\x9b\x9f", "\\x00\\x7f\\x80\\x9b\\x9f"),
    ("abc\u202etxt.exe", "abc\\u202etxt.exe"),
    ("\u2066x\u2069", "\\u2066x\\u2069"),
    ("\u200e\u200f\u061c\u2028\u2029", "\\u200e\\u200f\\u061c\\u2028\\u2029"),
    ("caf\udcc3", "caf\\xc3"),  # a surrogateescape'd byte: the byte itself
    ("\udcff\udc80", "\\xff\\x80"),
    ("\ud800x\udbff", "\\ud800x\\udbff"),  # a lone surrogate that is not an escaped byte
])
def test_escapes(s, shown):
    assert visible(s) == shown


def test_newlines_kept_on_request_only():
    assert visible("a\nb\x1b", newlines=True) == "a\nb\\x1b"
    assert visible("a\r\n", newlines=True) == "a\\x0d\n"
    assert visible("a\nb") == "a\\x0ab"


def test_visible_bytes_shows_undecodable_bytes_as_themselves():
    assert visible_bytes(b"map\xff\xfe\x1b[2J.so") == "map\\xff\\xfe\\x1b[2J.so"
    assert visible_bytes("ünï".encode()) == "ünï"


def _unsafe(c: str) -> bool:
    o = ord(c)
    return (unicodedata.category(c) == "Cc" or 0xD800 <= o <= 0xDFFF
            or c in BIDI or c in "\u200e\u200f\u061c\u2028\u2029")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec=None), max_size=60))
def test_any_string_becomes_printable_utf8(s):
    out = visible(s)
    assert not any(_unsafe(c) for c in out)
    out.encode("utf-8", "strict")  # never a surrogate left: a strict UTF-8 stream takes it
    assert visible(out) == out  # idempotent: escapes are plain ASCII
    if not any(_unsafe(c) for c in s):
        assert out == s


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=60))
def test_any_bytes_become_printable_and_json_round_trips(b):
    s = b.decode("utf-8", "surrogateescape")
    out = visible_bytes(b)
    assert all(0x20 <= ord(c) != 0x7f for c in out if ord(c) < 0xa0)
    out.encode("utf-8", "strict")
    # --json keeps the exact value: the surrogateescape'd string, JSON-escaped, gives the bytes back.
    encoded = json.dumps({"name": s})
    assert encoded.isascii()
    assert json.loads(encoded)["name"].encode("utf-8", "surrogateescape") == b


@given(st.text(max_size=30), st.text(max_size=30))
def test_escaping_is_per_character(a, b):
    assert visible(a + b) == visible(a) + visible(b)
