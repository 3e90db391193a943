"""Choosing what of a chat export to import: the numbered selection typed at the prompt."""

from __future__ import annotations

import pytest

from ferry.client.chat_import import parse_choice


@pytest.mark.parametrize(
    ("text", "chosen"),
    [
        ("", [0, 1, 2, 3, 4]),
        ("all", [0, 1, 2, 3, 4]),
        ("none", []),
        ("1,3-4", [0, 2, 3]),
        ("5 2", [1, 4]),
    ],
)
def test_parse_choice(text, chosen):
    assert parse_choice(text, 5) == chosen


@pytest.mark.parametrize("text", ["6", "0-2", "x", "3-1"])
def test_parse_choice_refuses_what_is_out_of_range(text):
    with pytest.raises(ValueError):
        parse_choice(text, 5)
