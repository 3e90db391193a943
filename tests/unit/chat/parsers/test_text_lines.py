"""Text files in exports: decoded as they stream, whatever tool wrote them, one line bounded."""

from __future__ import annotations

import io

import pytest

from ferry.chat.parsers.text_lines import LineTooLong, iter_text_lines


def test_text_falls_back_to_windows_1252_and_says_so():
    warnings: list[str] = []
    raw = "\ufeffcafé\n".encode() + "naïve, ‘quoted’\n".encode("cp1252")
    lines = list(iter_text_lines(io.BytesIO(raw), "names.csv", warnings.append, chunk_size=3))
    assert lines == ["café\n", "naïve, ‘quoted’\n"]
    assert len(warnings) == 1 and "names.csv is not valid UTF-8" in warnings[0]


def test_utf16_text_from_spreadsheets_is_read():
    raw = "alice,Zoë\n".encode("utf-16")
    assert list(iter_text_lines(io.BytesIO(raw), "u.csv", print)) == ["alice,Zoë\n"]


def test_a_line_without_end_is_refused_once_it_is_too_long():
    stream = io.BytesIO(b"x" * (1 << 20))
    with pytest.raises(LineTooLong):
        list(iter_text_lines(stream, "x.csv", lambda message: None, max_line=1000))
