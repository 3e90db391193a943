"""A new import from the wizard: a file uploaded from the browser, or a URL (or a path in
the server's import folder).

The upload is read as it arrives and handed, as a stream, to the same
`imports.upload` the API's uploadImportFile calls, under the same `--max-upload-size`:
the import runs in a worker thread that pulls each next piece of the request body
from the event loop when it needs it, so the file is never held whole or spooled
anywhere but the import store. A URL goes to the same `imports.download_public` as
downloadPublicImportFile, with the same downloader policy.
"""

from __future__ import annotations

import anyio.from_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from ferry.kernel.errors import InvalidInput, PayloadTooLarge
from handlers.body_limits import UPLOAD_ENVELOPE
from handlers.ui.multipart import CsrfMissing, MultipartForm, refusal_of
from handlers.ui.session import CSRF_FIELD
from handlers.ui.web import PREFIX, redirect, services_of, signed_in, user_of

RUN_IMPORT = "run-import"
CURRENT = PREFIX + "/imports/current"


class ImportUploadForm(MultipartForm):
    """The form's fields, then its one file, whose bytes wait in `pieces` for the
    import to read them."""

    def __init__(self):
        super().__init__()
        self.file_name: str | None = None
        self.content_type: str | None = None
        self.pieces: list[bytes] = []
        self.file_complete = False

    def file_begins(self, name: str, filename: str) -> None:
        if self.file_name is not None:
            raise InvalidInput("Send one file at a time.")
        self.file_name = filename
        self.content_type = self._headers.get("content-type")

    def file_data(self, data: bytes) -> None:
        self.pieces.append(data)

    def file_ends(self) -> None:
        self.file_complete = True


class BodyReader:
    """The uploaded file as a blocking stream, for a worker thread: each `read` takes the
    bytes already parsed, or pulls the request's next chunk from the event loop and
    parses it. Counts the whole body against `limit`."""

    def __init__(self, form: ImportUploadForm, parser, chunks, limit: int, received: int):
        self.form = form
        self.parser = parser
        self.chunks = chunks
        self.limit = limit
        self.received = received

    def read(self, size: int = -1) -> bytes:
        while not self.form.pieces and not self.form.file_complete:
            chunk = anyio.from_thread.run(_next_chunk, self.chunks)
            if chunk is None:
                self.parser.finalize()
                if not self.form.file_complete:
                    raise InvalidInput("The form ended before its file did.")
                break
            self.received += len(chunk)
            if self.received > self.limit:
                raise PayloadTooLarge(self.limit)
            self.parser.write(chunk)
        data = b"".join(self.form.pieces)
        if 0 <= size < len(data):
            self.form.pieces = [data[size:]]
            return data[:size]
        self.form.pieces = []
        return data


async def _next_chunk(chunks) -> bytes | None:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return None


def _authorize(request: Request) -> None:
    services_of(request).accounts.authorize(user_of(request), RUN_IMPORT)


def _password(fields) -> str | None:
    return str(fields.get("password") or "") or None


@signed_in(reads_form=False)
async def upload_import_file(request: Request):
    _authorize(request)
    services = services_of(request)
    limit = services.config.max_upload_size + UPLOAD_ENVELOPE
    form = ImportUploadForm()
    parser = form.parser(request)
    chunks = request.stream().__aiter__()

    async def read_and_import() -> None:
        received = 0
        # The fields come first: read until the file part begins.
        while form.file_name is None:
            chunk = await _next_chunk(chunks)
            if chunk is None:
                parser.finalize()
                break
            received += len(chunk)
            if received > limit:
                raise PayloadTooLarge(limit)
            parser.write(chunk)
        sessions = request.app.state.sessions
        if not sessions.csrf_valid(request.state.session[1], form.fields.get(CSRF_FIELD)):
            raise CsrfMissing
        if not form.file_name:
            raise InvalidInput("Choose the export file to upload.")
        await run_in_threadpool(
            services.imports.upload,
            user_of(request)["_id"],
            form.file_name,
            form.content_type or "application/octet-stream",
            str(form.fields.get("importerKey", "")),
            BodyReader(form, parser, chunks, limit, received),
            password=_password(form.fields),
        )

    refused = await refusal_of(request, read_and_import())
    if refused is not None:
        return refused
    return redirect(CURRENT)


@signed_in
async def import_from_url(request: Request):
    _authorize(request)
    form = request.state.form
    url = str(form.get("fileUrl", "")).strip()
    if not url:
        raise InvalidInput("Give the URL of the export, or its path in the import folder.")
    await run_in_threadpool(
        services_of(request).imports.download_public,
        user_of(request)["_id"],
        url,
        str(form.get("importerKey", "")),
        password=_password(form),
    )
    return redirect(CURRENT)


ROUTES = [
    Route(PREFIX + "/imports/upload", upload_import_file, methods=["POST"]),
    Route(PREFIX + "/imports/url", import_from_url, methods=["POST"]),
]
