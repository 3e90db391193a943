"""Large files from the files page, sent in chunks that survive an interruption.

The page asks how many bytes the server holds of a file (`upload-held`), sends the rest
a chunk at a time (`upload-chunk`, each appended to the same part file the API's
`PATCH` resumes), and can drop what it sent (`upload-cancel`). After a dropped
connection, a reload or a restart of the server, choosing the same file again goes on
from the bytes already held. The session cookie authenticates; each state-changing
request carries the session's CSRF token in `X-CSRF-Token`.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ferry.kernel.errors import InvalidInput, PayloadTooLarge
from handlers.file_changes import append_stream
from handlers.ui.file_actions import UPLOAD_FILES, joined, single_name
from handlers.ui.web import PREFIX, csrf_refused, services_of, signed_in, user_of

CSRF_HEADER = "x-csrf-token"
# The page sends 8 MiB chunks; a little more is accepted, never more than this.
CHUNK_LIMIT = 16 * 1024 * 1024
CHUNK_PATH = PREFIX + "/edit/upload-chunk"


def _target(request: Request) -> str:
    """The display path the chunks are for, from `folder` and `name`; the caller must
    be allowed to upload."""
    services_of(request).accounts.authorize(user_of(request), UPLOAD_FILES)
    query = request.query_params
    return joined(query.get("folder", ""), single_name(query.get("name"), "file"))


def _whole_number(request: Request, name: str) -> int:
    value = request.query_params.get(name, "")
    if not value.isdigit() or len(value) > 19:
        raise InvalidInput(f"Give `{name}` as a whole number of bytes.")
    return int(value)


def _csrf_ok(request: Request) -> bool:
    sessions = request.app.state.sessions
    return sessions.csrf_valid(request.state.session[1], request.headers.get(CSRF_HEADER))


@signed_in
async def upload_held(request: Request):
    held = await run_in_threadpool(
        services_of(request).file_edits.uploaded_so_far, _target(request)
    )
    return JSONResponse({"size": held or 0})


@signed_in(reads_form=False)
async def upload_chunk(request: Request):
    if not _csrf_ok(request):
        return csrf_refused(request)
    target = _target(request)
    total, offset = _whole_number(request, "total"), _whole_number(request, "offset")
    limit = services_of(request).config.max_upload_size
    if total > limit:
        raise PayloadTooLarge(limit)
    overwrite = request.query_params.get("overwrite") == "on"
    edits = services_of(request).file_edits
    upload = await run_in_threadpool(edits.resume_upload, target, overwrite=overwrite, total=total)
    if upload.size != offset:
        await run_in_threadpool(upload.pause)
        return JSONResponse(
            {"size": upload.size, "error": f"The server holds {upload.size} bytes of it."},
            status_code=409,
        )
    await append_stream(upload, request.stream(), CHUNK_LIMIT)
    if not upload.complete:
        await run_in_threadpool(upload.pause)
        return JSONResponse({"size": upload.size, "complete": False})
    await run_in_threadpool(upload.publish)
    shown = services_of(request).files.display_path(upload.destination)
    return JSONResponse({"size": upload.size, "complete": True, "path": shown})


@signed_in(reads_form=False)
async def upload_cancel(request: Request):
    if not _csrf_ok(request):
        return csrf_refused(request)
    target = _target(request)
    dropped = await run_in_threadpool(services_of(request).file_edits.cancel_upload, target)
    return JSONResponse({"cancelled": dropped})


ROUTES = [
    Route(PREFIX + "/edit/upload-held", upload_held, methods=["GET"]),
    Route(CHUNK_PATH, upload_chunk, methods=["POST"]),
    Route(PREFIX + "/edit/upload-cancel", upload_cancel, methods=["POST"]),
]
