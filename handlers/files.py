"""Browsing the file tree: JSON listings for directories, streamed bytes for files."""

from __future__ import annotations

import mimetypes
import os
from email.utils import parsedate_to_datetime
from pathlib import Path

from connexion import request
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse

from ferry.kernel.errors import NotFound, RangeNotSatisfiable
from handlers.context import allowed_methods, current_user, services
from handlers.response_headers import served_file_headers
from handlers.responses import empty_response, json_response
from handlers.starlette_overrides import LenientFileResponse


def browse_root(
    download_history=None,
    download=None,
    filename=None,
    timeout=None,
    downloads=None,
    offset=0,
    count=50,
    checksum=None,
):
    """GET / (with ?download_history=, ?download=, ?downloads=)"""
    if download_history is not None:
        return json_response(200, {"history": services().transfers.history(current_user())})
    return browse("", download, filename, timeout, downloads, offset, count, checksum)


def browse(
    path: str,
    download=None,
    filename=None,
    timeout=None,
    downloads=None,
    offset=0,
    count=50,
    checksum=None,
):
    """GET /{path} (with ?download=, ?downloads=)"""
    if download is not None:
        return _start_download(path, download, filename, timeout, checksum)
    if downloads is not None:
        downloads = services().transfers.active(current_user(), path)
        return json_response(200, {"downloads": downloads})
    return _browse(path, offset, count)


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
            return _file_response(existing, attachment=True)
    started = services().transfers.start(
        current_user(), path, url, filename=filename, timeout=timeout, checksum=checksum
    )
    return json_response(200, started)


def _browse(raw_path: str, offset: int, count: int):
    # The catch-all route also catches other methods' API paths: GET /api/v1/login.
    methods = allowed_methods("/" + raw_path, include_catch_all=False) if raw_path else None
    if methods:
        raise HTTPException(405, headers={"Allow": ", ".join(methods)})
    tree = services().files
    target = tree.resolve(raw_path)
    if target.is_dir():
        return json_response(200, listing_page(target, offset, count))
    return _file_response(target)


def listing_page(directory: Path, offset: int, count: int) -> dict:
    """A page of `directory`'s entries, as `DirectoryListing`."""
    tree = services().files
    entries = tree.listing(directory)
    page = entries[offset : offset + count]
    return {
        "success": True,
        "path": tree.display_path(directory),
        "entries": [entry.as_dict() for entry in page],
        "count": len(page),
        "offset": offset,
        "total": len(entries),
    }


def _file_response(target: Path, *, attachment: bool = False):
    info = os.stat(target)
    media_type = mimetypes.guess_type(target.name)[0]
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
