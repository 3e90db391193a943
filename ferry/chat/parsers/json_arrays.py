"""JSON arrays inside exports, read item by item within bounds.

Exports keep their records in top-level JSON arrays that can be far larger than memory.
Each array is streamed with ijson, one item at a time; a single item larger than
ArchiveLimits.max_json_value_bytes and nesting deeper than MAX_JSON_DEPTH are refused,
since either would let a hostile file exhaust memory or CPU.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import ijson
import orjson

from ferry.chat.parsers.base import ArchiveLimits

# JSON arrays up to this size are parsed in one go (their items all held at once,
# a few times this in memory); larger ones are streamed item by item.
_WHOLE_ARRAY_BYTES = 256 * 1024


class NotAJsonArray(ValueError):
    """The file holds JSON, but not the array the format puts there."""


class OversizedJsonValue(ValueError):
    """One JSON value is larger than ArchiveLimits.max_json_value_bytes."""


class _ValueBudget:
    """Stops ijson from building one item larger than the budget.

    ijson only hands over an item once it is complete, so the bytes read since the last
    item bound the memory that item can take.
    """

    def __init__(self, stream: BinaryIO, limit: int, name: str):
        self._stream = stream
        self._limit = limit
        self._name = name
        self.since_item = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.since_item += len(data)
        if self.since_item > self._limit:
            raise OversizedJsonValue(
                f"{self._name} holds a single value larger than {self._limit} bytes"
            )
        return data


class JsonTooDeep(ValueError):
    """JSON nested deeper than MAX_JSON_DEPTH; ijson's cost grows with depth squared."""


# Real exports nest a handful of levels; ijson's work per event grows with the depth
# (it rebuilds the prefix), so a file of nothing but `[[[[...` would hold the GIL for
# minutes.
MAX_JSON_DEPTH = 256
_STRUCTURAL = bytes(range(256)).translate(None, b'[]{}"\\')
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class JsonDepthGuard:
    """Wraps a byte stream read by ijson; raises JsonTooDeep when the JSON nests too deep.

    It tracks brackets outside strings with C-speed passes (regex, translate), so
    reading stays cheap on large files.
    """

    def __init__(self, stream, name: str, max_depth: int = MAX_JSON_DEPTH):
        self._stream = stream
        self._name = name
        self._max_depth = max_depth
        self._depth = 0
        self._in_string = False
        self._carry = b""  # a trailing backslash whose escaped byte is in the next chunk

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._scan(data)
        return data

    def _scan(self, data: bytes) -> None:
        text = _ESCAPE.sub(b"", self._carry + data)
        self._carry = b""
        if text.endswith(b"\\"):
            self._carry, text = b"\\", text[:-1]
        text = text.translate(None, _STRUCTURAL).replace(b"\\", b"")
        if self._in_string:
            end = text.find(b'"')
            if end < 0:
                return
            text, self._in_string = text[end + 1 :], False
        text = _STRING.sub(b"", text)
        if b'"' in text:  # a string left open at the chunk's end
            text, self._in_string = text[: text.index(b'"')], True
        depth = self._depth
        for byte in text:
            depth += _DEPTH_STEP[byte]
            if depth > self._max_depth:
                raise JsonTooDeep(f"{self._name} nests deeper than {self._max_depth} levels")
        self._depth = depth


def _skip_bom_and_space(stream: io.BufferedReader) -> bytes:
    """The first meaningful byte, left unread; b'' for an empty stream."""
    head = stream.peek(3)[:3]
    if head.startswith(codecs.BOM_UTF8):
        stream.read(3)
    while True:
        head = stream.peek(1)
        if not head:
            return b""
        stripped = head.lstrip(b" \t\r\n")
        if stripped:
            stream.read(len(head) - len(stripped))
            return stripped[:1]
        stream.read(len(head))


def iter_json_array(stream: io.BufferedReader, name: str, limits: ArchiveLimits) -> Iterator[Any]:
    """The items of a top-level JSON array, one at a time.

    Raises NotAJsonArray, OversizedJsonValue or ijson.JSONError; callers decide whether
    that loses one file or the whole import.
    """
    first = _skip_bom_and_space(stream)
    if first == b"":
        raise NotAJsonArray(f"{name} is empty")
    if first != b"[":
        raise NotAJsonArray(f"{name} does not hold a JSON array")
    # A file smaller than the value budget cannot break it, and orjson parses it six
    # times faster than ijson (ijson was a fifth of a Slack prepare). Anything orjson
    # refuses goes through ijson as before, so items and errors stay the same (but for
    # an integer beyond 64 bits, which orjson reads as a float where ijson stops).
    whole = min(_WHOLE_ARRAY_BYTES, limits.max_json_value_bytes)
    head = stream.read(whole + 1)
    if len(head) <= whole:
        try:
            items = orjson.loads(head)
        except orjson.JSONDecodeError:
            items = None
        if isinstance(items, list):
            yield from items
            return
    # Deep nesting is what makes ijson slow (quadratic), so the guard sits on the stream.
    guarded = JsonDepthGuard(_Prefixed(head, stream), name)
    budget = _ValueBudget(guarded, limits.max_json_value_bytes, name)
    for item in ijson.items(budget, "item", use_float=True):
        budget.since_item = 0
        yield item


class _Prefixed:
    """`prefix` and then the rest of `stream`, as one readable stream."""

    def __init__(self, prefix: bytes, stream: BinaryIO):
        self._prefix = memoryview(prefix)
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if not self._prefix:
            return self._stream.read(size)
        if size < 0:
            data = bytes(self._prefix) + self._stream.read()
            self._prefix = memoryview(b"")
            return data
        data = bytes(self._prefix[:size])
        # Once used up, let go of the prefix's bytes.
        self._prefix = self._prefix[size:] if size < len(self._prefix) else memoryview(b"")
        return data


JSON_ERRORS = (
    NotAJsonArray,
    OversizedJsonValue,
    JsonTooDeep,
    ijson.JSONError,
    UnicodeDecodeError,
)
