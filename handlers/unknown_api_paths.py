"""Rocket.Chat's answer for an API path Ferry does not serve.

The spec ends with the file browser's catch-all `/{path}`, so without this every
unknown `/api/...` path would reach the file tree and answer as a missing file (or as a
query the file routes refuse). Rocket.Chat answers an unknown route under its API with
its `notFound()` body, whatever the method, the query or the caller; so does Ferry.
"""

from __future__ import annotations

import orjson

from handlers.context import allowed_methods

API_NOT_FOUND_BODY = orjson.dumps({"success": False, "error": "Resource not found"})


def is_unknown_api_path(path: str) -> bool:
    """True for `/api` and `/api/...` paths no concrete operation of the spec serves."""
    if path != "/api" and not path.startswith("/api/"):
        return False
    return not allowed_methods(path, include_catch_all=False)


class UnknownApiPathMiddleware:
    """Answers 404 with Rocket.Chat's body before routing (which would answer 405 for a
    method the catch-all lacks) or the catch-all's security and validation see an
    unknown API path. It sits after the Swagger UI, which Connexion serves itself."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not is_unknown_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(API_NOT_FOUND_BODY)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": API_NOT_FOUND_BODY})
