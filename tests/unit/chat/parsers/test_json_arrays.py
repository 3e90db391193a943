"""JSON arrays in exports: read item by item, one item's size and the nesting depth bounded."""

from __future__ import annotations

import io

import pytest

from ferry.chat.parsers.base import ArchiveLimits
from ferry.chat.parsers.json_arrays import JsonDepthGuard, JsonTooDeep, iter_json_array


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


def test_one_oversized_json_value_is_refused_before_it_is_built():
    stream = io.BufferedReader(io.BytesIO(b'[{"a": 1}, {"text": "' + b"x" * 500_000 + b'"}]'))
    items = iter_json_array(stream, "big.json", ArchiveLimits(max_json_value_bytes=100_000))
    assert next(items) == {"a": 1}
    with pytest.raises(ValueError, match="larger than 100000 bytes"):
        next(items)
