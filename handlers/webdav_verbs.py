"""The file tree's changing methods before routing: WebDAV's MKCOL and MOVE answered by
the documented `POST /{path}`, uploads' bodies kept as bytes, and 405 for the API's paths.

An OpenAPI document can only describe the standard methods, so these two verbs are
rewritten before routing into the POST they mean (`?mkdir=`, `?move=DEST&overwrite=`);
authentication, the permission gate, validation and the handler are then the same as
for the POST, and there is no second code path to keep in step.
"""

from __future__ import annotations

from urllib.parse import unquote, urlencode, urlsplit

from starlette.exceptions import HTTPException

from handlers.context import allowed_methods

EXTRA_METHODS = ("MKCOL", "MOVE")
CHANGING_METHODS = ("PUT", "POST", "PATCH", "DELETE", *EXTRA_METHODS)
UPLOAD_METHODS = ("PUT", "PATCH")


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def destination_path(destination: str) -> str:
    """The tree path a `Destination` header (an absolute URL or a path) names."""
    return unquote(urlsplit(destination).path).lstrip("/")


def as_file_bytes(scope) -> dict:
    """An upload's body is the file's bytes whatever type the client labels it: a JSON
    or form file is stored as it came, never parsed (nor held in memory) to validate."""
    headers = [(name, value) for name, value in scope["headers"] if name != b"content-type"]
    headers.append((b"content-type", b"application/octet-stream"))
    return {**scope, "headers": headers}


def rewritten_query(scope) -> bytes:
    if scope["method"] == "MKCOL":
        return b"mkdir="
    overwrite = (_header(scope, b"overwrite") or "F").strip().upper() == "T"
    move = destination_path(_header(scope, b"destination") or "")
    return urlencode({"move": move, "overwrite": str(overwrite).lower()}).encode()


class WebDavVerbsMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method in CHANGING_METHODS:
            # Routing would hand the API's own paths, and `/` (with an empty path), to the
            # catch-all `/{path}`: they answer 405 as for any method they do not have.
            declared = allowed_methods(scope["path"], include_catch_all=False)
            if declared and method not in declared:
                raise HTTPException(405, headers={"Allow": ", ".join(declared)})
            if not declared and method in UPLOAD_METHODS:
                scope = as_file_bytes(scope)
        if method in EXTRA_METHODS:
            scope = {**scope, "method": "POST", "query_string": rewritten_query(scope)}
        await self.app(scope, receive, send)
