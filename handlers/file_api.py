"""The file tree as JSON-only operations, the path a query parameter."""

from __future__ import annotations

from ferry.kernel.errors import InvalidInput
from handlers.context import services
from handlers.files import _file_response, listing_page
from handlers.responses import json_response

OCTET_STREAM = "application/octet-stream"


def list_files(path: str = "", offset: int = 0, count: int = 50):
    """GET /api/v1/files"""
    tree = services().files
    target = tree.resolve(path)
    if not target.is_dir():
        raise InvalidInput(f"{tree.display_path(target)} is a file, not a directory.")
    return json_response(200, listing_page(target, offset, count))


def get_file_content(path: str):
    """GET /api/v1/files/content"""
    tree = services().files
    target = tree.resolve(path)
    if target.is_dir():
        raise InvalidInput(f"{tree.display_path(target) or '/'} is a directory, not a file.")
    response = _file_response(target, attachment=True)
    if "content-type" in response.headers:
        response.headers["content-type"] = OCTET_STREAM
    return response
