"""Bounds on hostile text and JSON inside exports: nesting depth and line length."""

import io

import pytest

from ferry.chat.parsers.archive import JsonDepthGuard, JsonTooDeep, LineTooLong, iter_text_lines


def read_all(data: bytes, chunk: int, max_depth: int = 8) -> None:
    guard = JsonDepthGuard(io.BytesIO(data), "x.json", max_depth=max_depth)
    while guard.read(chunk):
        pass


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64 * 1024])
def test_brackets_inside_strings_and_escapes_do_not_count(chunk):
    text = '[{"a": "[[[[[[[[[[[[{{{{{{", "b": "\\"[[[[[[[[[[[[", "c": "\\\\", "d": [[["x"]]]}]'
    read_all(text.encode(), chunk)


@pytest.mark.parametrize("chunk", [1, 5, 64 * 1024])
def test_nesting_beyond_the_limit_is_refused(chunk):
    with pytest.raises(JsonTooDeep):
        read_all(b'[{"a": "]]]]]]]]]]"' + b"[" * 9, chunk)


def test_a_line_without_end_is_refused_once_it_is_too_long():
    stream = io.BytesIO(b"x" * (1 << 20))
    with pytest.raises(LineTooLong):
        list(iter_text_lines(stream, "x.csv", lambda message: None, max_line=1000))
