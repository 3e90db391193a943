"""Uploads from the files page: a multipart form whose file parts are streamed, as they
arrive, into the same upload code the API's PUT uses (never held whole in memory or
spooled elsewhere). The form's fields (CSRF token, folder, overwrite) come before its
files, so each is known before the first byte of a file is written."""

from __future__ import annotations

from python_multipart.exceptions import ParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from ferry.kernel.errors import InvalidInput, PayloadTooLarge
from handlers.ui.file_actions import UPLOAD_FILES, folder_page, joined, single_name
from handlers.ui.session import CSRF_FIELD
from handlers.ui.web import PREFIX, csrf_refused, redirect, services_of, signed_in, user_of

# A field of this form is a token, a folder path or a checkbox: never large.
FIELD_LIMIT = 8192


class CsrfMissing(Exception):
    """A file part came before a valid CSRF token."""


class FormStream:
    """Parser callbacks: fields are kept (bounded), file parts go to uploads."""

    def __init__(self, request: Request):
        self.request = request
        self.edits = services_of(request).file_edits
        self.limit = services_of(request).config.max_upload_size
        self.fields: dict[str, str] = {}
        self.saved: list[str] = []
        self.upload = None
        self._headers: dict[str, str] = {}
        self._field = self._value = b""
        self._name = ""
        self._buffer: bytearray | None = None

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
            self._buffer = bytearray()
            return
        self._buffer = None
        sessions = self.request.app.state.sessions
        if not sessions.csrf_valid(self.request.state.session[1], self.fields.get(CSRF_FIELD)):
            raise CsrfMissing
        services_of(self.request).accounts.authorize(user_of(self.request), UPLOAD_FILES)
        name = filename.decode("utf-8", "replace")
        if not name:
            return  # the file input was left empty
        target = joined(self.fields.get("folder", ""), single_name(name, "file"))
        self.upload = self.edits.begin_upload(
            target, overwrite=self.fields.get("overwrite") == "on", limit=self.limit
        )

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._buffer is not None:
            self._buffer += data[start:end]
            if len(self._buffer) > FIELD_LIMIT:
                raise InvalidInput(f"The form field '{self._name}' is too long.")
        elif self.upload is not None:
            self.upload.write(data[start:end])

    def _part_end(self) -> None:
        if self._buffer is not None:
            self.fields[self._name] = self._buffer.decode("utf-8", "replace")
            self._buffer = None
        elif self.upload is not None:
            upload, self.upload = self.upload, None
            upload.publish()
            self.saved.append(services_of(self.request).files.display_path(upload.destination))


def _boundary(request: Request) -> bytes:
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput("Send the files as multipart/form-data.")
    return boundary


@signed_in(reads_form=False)
async def upload_files(request: Request):
    stream = FormStream(request)
    parser = MultipartParser(_boundary(request), stream.callbacks())
    try:
        async for chunk in request.stream():
            if chunk:
                await run_in_threadpool(parser.write, chunk)
        parser.finalize()
    except CsrfMissing:
        return csrf_refused(request)
    except ParseError:
        raise InvalidInput("The form is not valid multipart/form-data.") from None
    except ClientDisconnect:
        return Response(status_code=400)
    except OverflowError:
        raise PayloadTooLarge(stream.limit) from None
    finally:
        if stream.upload is not None:
            stream.upload.abort()
    sessions = request.app.state.sessions
    if not sessions.csrf_valid(request.state.session[1], stream.fields.get(CSRF_FIELD)):
        return csrf_refused(request)
    if not stream.saved:
        raise InvalidInput("Choose at least one file to upload.")
    return redirect(folder_page(stream.fields.get("folder", "")))


ROUTES = [Route(PREFIX + "/edit/upload", upload_files, methods=["POST"])]
