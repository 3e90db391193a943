"""Browsing the file tree: JSON listings for directories, streamed bytes for files."""

from __future__ import annotations

import mimetypes
import os
from email.utils import parsedate_to_datetime
from pathlib import Path

from connexion import request
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, StreamingResponse

from ferry.files.reading import search, zip_stream
from ferry.kernel.errors import InvalidInput, NotFound, RangeNotSatisfiable
from handlers.context import allowed_methods, current_user, services
from handlers.errors import error_response
from handlers.response_headers import served_file_headers
from handlers.responses import empty_response, json_response
from handlers.starlette_overrides import LenientFileResponse

UPLOAD_OFFSET = "X-Upload-Offset"
OCTET_STREAM = "application/octet-stream"
# A file of the tree keeps its own type in these families. Any other (PDF, archives,
# JSON, fonts, unknown) is sent as application/octet-stream: JSON from `GET /{path}` is
# then always one of the API's documents, never a file's bytes, and each media type the
# spec lists for the route has one schema.
OWN_TYPE_FAMILIES = ("text/", "image/", "audio/", "video/")


def browse_root(
    download_history=None,
    download=None,
    filename=None,
    timeout=None,
    downloads=None,
    offset=0,
    count=50,
    sort="name",
    order="asc",
    zip=None,
    q=None,
    checksum=None,
):
    """GET / (with ?download_history=, ?download=, ?downloads=, ?zip=, ?q=)"""
    if download_history is not None:
        return json_response(200, {"history": services().transfers.history(current_user())})
    return browse(
        "",
        download,
        filename,
        timeout,
        downloads,
        offset,
        count,
        sort,
        order,
        zip,
        q,
        checksum=checksum,
    )


def browse(
    path: str,
    download=None,
    filename=None,
    timeout=None,
    downloads=None,
    offset=0,
    count=50,
    sort="name",
    order="asc",
    zip=None,
    q=None,
    hash=None,
    checksum=None,
):
    """GET /{path} (with ?download=, ?downloads=, ?zip=, ?q=, ?hash=)"""
    if download is not None:
        return _start_download(path, download, filename, timeout, checksum)
    if downloads is not None:
        downloads = services().transfers.active(current_user(), path)
        return json_response(200, {"downloads": downloads})
    if zip is not None or q is not None or hash is not None:
        return _read_whole(path, zip is not None, q, hash is not None, offset, count)
    return _browse(path, offset, count, sort, order)


def _read_whole(
    raw_path: str, as_zip: bool, query: str | None, as_hash: bool, offset: int, count: int
):
    tree = services().files
    target = tree.resolve(raw_path)
    shown = tree.display_path(target)
    if as_hash:
        if not target.is_file():
            raise InvalidInput("?hash= needs a file.")
        digest = services().file_hashes.sha256(target)
        body = {"success": True, "path": shown, "sha256": digest, "size": target.stat().st_size}
        return json_response(200, body)
    if not target.is_dir():
        raise InvalidInput("?zip= and ?q= need a directory.")
    if query is not None:
        page = search(target, query, offset, count)
        entries = [entry.as_dict() for entry in page.entries]
        body = {"success": True, "path": shown, "query": query, "entries": entries}
        paging = {"count": len(entries), "offset": offset, "more": page.more}
        return json_response(200, {**body, **paging, "truncated": page.truncated})
    name = (target.name if shown else "files") + ".zip"
    return StreamingResponse(
        zip_stream(target),
        media_type="application/zip",
        headers=served_file_headers(name, "application/zip", attachment=True),
    )


def _start_download(
    path: str, url: str, filename: str | None, timeout: int | None, checksum: str | None
):
    tree = services().files
    if path:
        try:
            existing = tree.resolve(path)
        except NotFound:
            existing = None
        if existing is not None and existing.is_file():
            # As the original server does: ?download on a file hands the file over.
            return _file_response(
                existing, attachment=True, media_type=tree_file_type(existing.name)
            )
    started = services().transfers.start(
        current_user(), path, url, filename=filename, timeout=timeout, checksum=checksum
    )
    return json_response(200, started)


def _browse(raw_path: str, offset: int, count: int, sort: str, order: str):
    # The catch-all route also catches other methods' API paths: GET /api/v1/login.
    methods = allowed_methods("/" + raw_path, include_catch_all=False) if raw_path else None
    if methods:
        raise HTTPException(405, headers={"Allow": ", ".join(methods)})
    tree = services().files
    try:
        target = tree.resolve(raw_path)
    except NotFound as missing:
        uploaded = services().file_edits.uploaded_so_far(raw_path)
        if uploaded is None:
            raise
        # A resumable upload under way: HEAD tells its client where to go on from.
        return error_response(404, missing.message, headers={UPLOAD_OFFSET: str(uploaded)})
    if target.is_dir():
        return json_response(200, listing_page(target, offset, count, sort, order))
    return _file_response(target, media_type=tree_file_type(target.name))


def listing_page(
    directory: Path, offset: int, count: int, sort: str = "name", order: str = "asc"
) -> dict:
    """A page of `directory`'s entries in the order asked for, as `DirectoryListing`."""
    tree = services().files
    entries = tree.listing(directory, sort, order)
    page = entries[offset : offset + count]
    return {
        "success": True,
        "path": tree.display_path(directory),
        "entries": [entry.as_dict() for entry in page],
        "count": len(page),
        "offset": offset,
        "total": len(entries),
    }


def tree_file_type(name: str) -> str:
    """The media type a file of the tree is sent as."""
    media_type = mimetypes.guess_type(name)[0]
    if media_type and media_type.startswith(OWN_TYPE_FAMILIES):
        return media_type
    return OCTET_STREAM


def _file_response(target: Path, *, attachment: bool = False, media_type: str | None = None):
    """`target`'s bytes (Range, conditional requests), as `media_type` or its guessed type."""
    info = os.stat(target)
    media_type = media_type or mimetypes.guess_type(target.name)[0]
    response = LenientFileResponse(
        target,
        stat_result=info,
        media_type=media_type,
        headers=served_file_headers(target.name, media_type, attachment=attachment),
    )
    if _not_modified(response, info):
        return empty_response(304, {k: response.headers[k] for k in ("etag", "last-modified")})
    if not LenientFileResponse.range_is_satisfiable(request.headers.get("range"), info.st_size):
        raise RangeNotSatisfiable(info.st_size)
    return response


def _not_modified(response: FileResponse, info: os.stat_result) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or response.headers["etag"] in tags
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError):
            return False
        return int(info.st_mtime) <= since
    return False
