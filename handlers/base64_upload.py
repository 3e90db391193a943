"""uploadImportFile's JSON body with its base64 file taken out as it arrives.

Rocket.Chat's client sends the whole export as base64 in `binaryContent`. Read and
parsed as JSON, it would sit in memory several times over (the body, its text, the
string, the decoded bytes: about 4.5 times the body). This middleware reads the body as
it arrives, writes the characters of `binaryContent` to a spool file (on disk past
`SPOOL_IN_MEMORY`) and hands Connexion the rest of the object with `binaryContent: ""`,
so validation sees a small body; the handler takes the spool from `streamed_content()`
and the import service decodes it a chunk at a time.

It runs after authentication, so only a caller allowed to import can make it spool.
"""

from __future__ import annotations

import json
import re
import tempfile
from contextvars import ContextVar
from typing import IO

from starlette.requests import ClientDisconnect

from ferry.kernel.errors import InvalidInput, PayloadTooLarge
from handlers.body_limits import UPLOAD_OPERATION, replay, with_length
from handlers.observe import operation_of

FILE_FIELD = "binaryContent"
# The fields besides the file (names, a password) fit in this many bytes.
FIELDS_LIMIT = 64 * 1024
SPOOL_IN_MEMORY = 1024 * 1024
# Longer keys cannot be FILE_FIELD, however escaped.
_KEY_LIMIT = 6 * len(FILE_FIELD) + 2
_STRING_END_OR_ESCAPE = re.compile(rb'["\\]')
_SIMPLE_ESCAPES = {
    ord('"'): b'"',
    ord("\\"): b"\\",
    ord("/"): b"/",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
}
# Written for an escape that stands for no base64 character, so the text stays invalid.
_NOT_BASE64 = b"!"

_streamed: ContextVar[IO[bytes] | None] = ContextVar("ferry_streamed_base64", default=None)


def streamed_content() -> IO[bytes] | None:
    """The characters of this request's `binaryContent`, when the middleware took them."""
    return _streamed.get()


class FileFieldSplitter:
    """Splits a JSON object into the string value of its top-level `binaryContent`
    (unescaped, written to `sink`) and the rest of the text (kept, at most FIELDS_LIMIT
    bytes), with `""` where the value was.

    It reads only as much JSON as it needs: string boundaries, nesting and the keys of
    the top level. Anything malformed is passed on in the rest for the JSON parser to
    refuse.
    """

    def __init__(self, sink: IO[bytes]):
        self.sink = sink
        self.rest = bytearray()
        self.found = False
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self._string_start = 0
        self._expect_key = False
        self._key: str | None = None
        self._file_value_next = False
        self._in_file = False
        self._escape = b""

    def feed(self, chunk: bytes) -> None:
        """Raises PayloadTooLarge: the fields besides the file pass FIELDS_LIMIT."""
        at = 0
        while at < len(chunk):
            if self._in_file:
                at = self._feed_file(chunk, at)
            else:
                self._feed_rest(chunk[at])
                at += 1

    def finish(self) -> bytes:
        return bytes(self.rest)

    def _keep(self, byte: int) -> None:
        self.rest.append(byte)
        if len(self.rest) > FIELDS_LIMIT:
            raise PayloadTooLarge(FIELDS_LIMIT)

    def _feed_rest(self, byte: int) -> None:
        if self._in_string:
            self._keep(byte)
            if self._escaped:
                self._escaped = False
            elif byte == ord("\\"):
                self._escaped = True
            elif byte == ord('"'):
                self._in_string = False
                if self._depth == 1 and self._expect_key:
                    self._key = _key_text(self.rest[self._string_start :])
                    self._expect_key = False
            return
        if byte == ord('"') and self._depth == 1 and self._file_value_next:
            self._keep(byte)
            self._start_file()
            return
        self._keep(byte)
        if byte in b" \t\r\n":
            return
        self._file_value_next = False
        if byte == ord('"'):
            self._in_string, self._string_start = True, len(self.rest) - 1
        elif byte in b"{[":
            self._depth += 1
            self._expect_key = self._depth == 1 and byte == ord("{")
        elif byte in b"}]":
            self._depth -= 1
        elif self._depth == 1 and byte == ord(":"):
            self._file_value_next = self._key == FILE_FIELD
        elif self._depth == 1 and byte == ord(","):
            self._expect_key = True

    def _start_file(self) -> None:
        # A repeated key: JSON parsers keep the last value, and so does this.
        self.sink.seek(0)
        self.sink.truncate()
        self.found = True
        self._in_file = True
        self._file_value_next = False

    def _feed_file(self, chunk: bytes, at: int) -> int:
        if self._escape:
            return self._feed_escape(chunk, at)
        match = _STRING_END_OR_ESCAPE.search(chunk, at)
        end = match.start() if match else len(chunk)
        # In pieces and without copies: the spool holds its first MiB in memory, and a
        # big chunk written whole would sit there before it moves to disk.
        view = memoryview(chunk)
        for start in range(at, end, SPOOL_IN_MEMORY):
            self.sink.write(view[start : min(end, start + SPOOL_IN_MEMORY)])
        if match is None:
            return end
        if chunk[end] == ord('"'):
            self._in_file = False
            self._keep(ord('"'))
        else:
            self._escape = b"\\"
        return end + 1

    def _feed_escape(self, chunk: bytes, at: int) -> int:
        self._escape += chunk[at : at + 1]
        letter = self._escape[1]
        if letter == ord("u"):
            if len(self._escape) < 6:
                return at + 1
            try:
                code = int(self._escape[2:], 16)
            except ValueError:
                code = -1
            self.sink.write(bytes([code]) if 0 <= code < 128 else _NOT_BASE64)
        else:
            self.sink.write(_SIMPLE_ESCAPES.get(letter, _NOT_BASE64))
        self._escape = b""
        return at + 1


def _key_text(raw: bytearray) -> str | None:
    if len(raw) > _KEY_LIMIT:
        return None
    try:
        return json.loads(bytes(raw))
    except ValueError:
        return None


def _json_charset(scope) -> str | None:
    """The charset of a JSON body (`utf-8` when unnamed), or None for another type."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media, _, parameters = value.decode("latin-1").partition(";")
            media = media.strip().lower()
            if media != "application/json" and not media.endswith("+json"):
                return None
            charset = re.search(r"charset\s*=\s*\"?([^\";\s]+)", parameters, re.IGNORECASE)
            return charset.group(1).lower() if charset else "utf-8"
    return None


class StreamedBase64Middleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or operation_of(scope) != UPLOAD_OPERATION:
            await self.app(scope, receive, send)
            return
        charset = _json_charset(scope)
        if charset is None:
            await self.app(scope, receive, send)
            return
        if charset not in ("utf-8", "utf8"):
            raise InvalidInput("uploadImportFile takes a JSON body in UTF-8.")
        with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
            splitter = FileFieldSplitter(spool)
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect()
                splitter.feed(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            body = splitter.finish()
            spool.seek(0)
            token = _streamed.set(spool if splitter.found else None)
            try:
                await self.app(with_length(scope, len(body)), replay(body, receive), send)
            finally:
                _streamed.reset(token)
