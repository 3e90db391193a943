"""Changing the file tree over HTTP: PUT uploads, POST ?mkdir= / ?move=, DELETE."""

from __future__ import annotations

from collections.abc import AsyncIterator

from connexion import request
from starlette.concurrency import run_in_threadpool

from ferry.kernel.errors import InvalidInput, PayloadTooLarge
from handlers.context import current_user, services
from handlers.responses import json_response

DELETE_FILES = "delete-files"

# Bytes of a request body gathered before one write to disk, made on a worker thread so
# that a slow disk never stalls the event loop: large enough that the thread hop is
# rare, small enough that an upload holds little memory however large it is.
WRITE_BATCH = 1024 * 1024


async def _receive(upload) -> None:
    """The request body into `upload` as it arrives, written off the event loop a batch
    at a time (the next batch is read only once the last one is written)."""
    await write_stream(upload, request.stream())


async def write_stream(upload, chunks: AsyncIterator[bytes], cap: int | None = None) -> None:
    """`chunks` into `upload`, written off the event loop a batch at a time.

    Raises:
        PayloadTooLarge: more than `cap` bytes arrived.
        OverflowError: more than the upload's limit arrived.
    """
    batch, received = bytearray(), 0
    async for chunk in chunks:
        received += len(chunk)
        if cap is not None and received > cap:
            raise PayloadTooLarge(cap)
        batch += chunk
        if len(batch) >= WRITE_BATCH:
            await run_in_threadpool(upload.write, batch)
            batch = bytearray()
    if batch:
        await run_in_threadpool(upload.write, batch)


async def append_stream(upload, chunks: AsyncIterator[bytes], cap: int | None = None) -> None:
    """`chunks` appended to a resumable `upload`; whatever happens, what was written
    stays in its part file for the next append.

    Raises:
        InvalidInput: the body goes past the size the upload announced.
        PayloadTooLarge: more than `cap` bytes arrived.
    """
    try:
        await write_stream(upload, chunks, cap)
    except OverflowError:
        await run_in_threadpool(upload.pause)
        raise InvalidInput(f"The upload goes past the {upload.limit} bytes announced.") from None
    except BaseException:
        await run_in_threadpool(upload.pause)
        raise


async def upload_file(path: str, overwrite: bool = False):
    """PUT /{path}"""
    limit = services().config.max_upload_size
    upload = await run_in_threadpool(
        services().file_edits.begin_upload, path, overwrite=overwrite, limit=limit
    )
    try:
        await _receive(upload)
        replaced = await run_in_threadpool(upload.publish)
    except OverflowError:
        await run_in_threadpool(upload.abort)
        raise PayloadTooLarge(limit) from None
    except BaseException:
        upload.abort()
        raise
    shown = services().files.display_path(upload.destination)
    body = {"success": True, "path": shown, "size": upload.size}
    return json_response(200 if replaced else 201, body)


def change_path(path: str, mkdir=None, move=None, overwrite: bool = False):
    """POST /{path}?mkdir= or ?move=DEST (also MKCOL and MOVE)"""
    edits = services().file_edits
    if (mkdir is None) == (move is None):
        raise InvalidInput("Give exactly one of ?mkdir= and ?move=.")
    if mkdir is not None:
        return json_response(201, {"success": True, "path": edits.make_directory(path)})
    services().accounts.authorize(current_user(), DELETE_FILES)
    moved = edits.move(path, move, overwrite=overwrite)
    return json_response(201, {"success": True, "path": moved})


def delete_entry(path: str, recursive: bool = False):
    """DELETE /{path}"""
    deleted = services().file_edits.delete(path, recursive=recursive)
    return json_response(200, {"success": True, "path": deleted})


async def append_file(path: str, size: int, overwrite: bool = False):
    """PATCH /{path} with X-Update-Range: append"""

    if request.headers.get("x-update-range", "").strip().lower() != "append":
        raise InvalidInput("Send X-Update-Range: append to add to an upload.")
    limit = services().config.max_upload_size
    if size > limit:
        raise PayloadTooLarge(limit)
    upload = await run_in_threadpool(
        services().file_edits.resume_upload, path, overwrite=overwrite, total=size
    )
    await append_stream(upload, request.stream())
    shown = services().files.display_path(upload.destination.parent / upload.destination.name)
    if not upload.complete:
        await run_in_threadpool(upload.pause)
        return json_response(202, {"success": True, "path": shown, "size": upload.size})
    replaced = await run_in_threadpool(upload.publish)
    return json_response(200 if replaced else 201, {"success": True, "path": shown, "size": size})
