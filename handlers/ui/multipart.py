"""A multipart/form-data body read as it arrives: small fields are kept (each bounded),
and a file part's bytes go straight to the subclass, never held whole. Forms put their
fields (CSRF token first) before their files, so each is known before a file begins."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable

from python_multipart.exceptions import ParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ferry.kernel.errors import InvalidInput
from handlers.ui.web import csrf_refused

# A field of these forms is a token, a path, a key or a checkbox: never large.
FIELD_LIMIT = 8192
# More fields than any of these forms has.
FIELD_COUNT_LIMIT = 64


class CsrfMissing(Exception):
    """A file part came before a valid CSRF token."""


def boundary_of(request: Request) -> bytes:
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput("Send the files as multipart/form-data.")
    return boundary


async def refusal_of(request: Request, reading: Awaitable[None]) -> Response | None:
    """Awaits `reading` (the form being read and used): the page's answer when the form
    came without its CSRF token or the browser went away, None once it was read."""
    try:
        await reading
    except CsrfMissing:
        return csrf_refused(request)
    except ParseError:
        raise InvalidInput("The form is not valid multipart/form-data.") from None
    except ClientDisconnect:
        return Response(status_code=400)
    return None


class MultipartForm(ABC):
    """Parser callbacks; a subclass takes the files in `file_begins`, `file_data` and
    `file_ends`."""

    def __init__(self):
        self.fields: dict[str, str] = {}
        self._headers: dict[str, str] = {}
        self._field = self._value = b""
        self._name = ""
        self._buffer: bytearray | None = None
        self._in_file = False

    def parser(self, request: Request) -> MultipartParser:
        return MultipartParser(boundary_of(request), self.callbacks())

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    @abstractmethod
    def file_begins(self, name: str, filename: str) -> None:
        """A file part's headers arrived; its bytes follow."""

    @abstractmethod
    def file_data(self, data: bytes) -> None:
        """The next bytes of the current file part."""

    @abstractmethod
    def file_ends(self) -> None:
        """The current file part is complete."""

    def _part_begin(self) -> None:
        self._headers, self._field, self._value = {}, b"", b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]
        self._bounded(self._field)

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]
        self._bounded(self._value)

    @staticmethod
    def _bounded(header: bytes) -> None:
        if len(header) > FIELD_LIMIT:
            raise InvalidInput("A part header of the form is too long.")

    def _header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value.decode(
            "utf-8", "replace"
        )
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is None:
            if len(self.fields) >= FIELD_COUNT_LIMIT:
                raise InvalidInput("The form has too many fields.")
            self._buffer = bytearray()
            return
        self._buffer = None
        self._in_file = True
        self.file_begins(self._name, filename.decode("utf-8", "replace"))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._buffer is not None:
            self._buffer += data[start:end]
            if len(self._buffer) > FIELD_LIMIT:
                raise InvalidInput(f"The form field '{self._name}' is too long.")
        elif self._in_file:
            self.file_data(data[start:end])

    def _part_end(self) -> None:
        if self._buffer is not None:
            self.fields[self._name] = self._buffer.decode("utf-8", "replace")
            self._buffer = None
        elif self._in_file:
            self._in_file = False
            self.file_ends()
