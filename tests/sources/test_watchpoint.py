"""What a watch target may be: ADDR[:LEN] as strictly as the CLI reads it, or a symbol expression."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hftmem_tui.sources.layout import InvalidExpression
from hftmem_tui.sources.watchpoint import parse_target


@pytest.mark.parametrize("text, expected", [("0x10:8", ("", 16, 8)), ("4096", ("", 4096, None)),
                                            ("g_stats.fills", ("g_stats.fills", None, None))])
def test_targets_parse(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize("text, why", [("01", "octal"), ("08", "not octal digits"), ("0x10:01", "length"),
                                       ("9" * 5000, "more than 64 bits"), ("0x1" + "0" * 16, "more than 64 bits")])
def test_malformed_numbers_are_refused_with_the_reason(text, why):
    """The Watch pane and the tour parse with this: a refusal with a reason, never a ValueError traceback."""
    with pytest.raises(InvalidExpression, match=why) as e:
        parse_target(text)
    assert len(str(e.value)) < 200 and "\n" not in str(e.value)


@given(st.text(max_size=80))
def test_any_text_parses_or_is_refused(text):
    try:
        kind, address, length = parse_target(text)
    except InvalidExpression:
        return
    assert (address is None) == bool(kind)
