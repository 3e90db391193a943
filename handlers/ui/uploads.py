"""Uploads from the files page: a multipart form whose file parts are streamed, as they
arrive, into the same upload code the API's PUT uses (never held whole in memory or
spooled elsewhere). The form's fields (CSRF token, folder, overwrite) come before its
files, so each is known before the first byte of a file is written."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from ferry.kernel.errors import InvalidInput, PayloadTooLarge
from handlers.ui.file_actions import UPLOAD_FILES, folder_page, joined, single_name
from handlers.ui.multipart import CsrfMissing, MultipartForm, refusal_of
from handlers.ui.session import CSRF_FIELD
from handlers.ui.web import PREFIX, csrf_refused, redirect, services_of, signed_in, user_of


class FormStream(MultipartForm):
    """Fields are kept (bounded), file parts go to uploads."""

    def __init__(self, request: Request):
        super().__init__()
        self.request = request
        self.edits = services_of(request).file_edits
        self.limit = services_of(request).config.max_upload_size
        self.saved: list[str] = []
        self.upload = None

    def file_begins(self, name: str, filename: str) -> None:
        sessions = self.request.app.state.sessions
        if not sessions.csrf_valid(self.request.state.session[1], self.fields.get(CSRF_FIELD)):
            raise CsrfMissing
        services_of(self.request).accounts.authorize(user_of(self.request), UPLOAD_FILES)
        if not filename:
            return  # the file input was left empty
        target = joined(self.fields.get("folder", ""), single_name(filename, "file"))
        self.upload = self.edits.begin_upload(
            target, overwrite=self.fields.get("overwrite") == "on", limit=self.limit
        )

    def file_data(self, data: bytes) -> None:
        if self.upload is not None:
            self.upload.write(data)

    def file_ends(self) -> None:
        if self.upload is not None:
            upload, self.upload = self.upload, None
            upload.publish()
            self.saved.append(services_of(self.request).files.display_path(upload.destination))


@signed_in(reads_form=False)
async def upload_files(request: Request):
    stream = FormStream(request)
    parser = stream.parser(request)

    async def read_all() -> None:
        try:
            async for chunk in request.stream():
                if chunk:
                    await run_in_threadpool(parser.write, chunk)
            parser.finalize()
        except OverflowError:
            raise PayloadTooLarge(stream.limit) from None
        finally:
            if stream.upload is not None:
                stream.upload.abort()

    refused = await refusal_of(request, read_all())
    if refused is not None:
        return refused
    sessions = request.app.state.sessions
    if not sessions.csrf_valid(request.state.session[1], stream.fields.get(CSRF_FIELD)):
        return csrf_refused(request)
    if not stream.saved:
        raise InvalidInput("Choose at least one file to upload.")
    return redirect(folder_page(stream.fields.get("folder", "")))


ROUTES = [Route(PREFIX + "/edit/upload", upload_files, methods=["POST"])]
