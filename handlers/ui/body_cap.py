"""The size cap of the page's form posts. The page is served outside the JSON API's body
limits, and its forms (sign in, a user, a selection, a URL) are small: a body over
100 KB is refused with the page's error view and 413 before it is parsed. The
uploads stream their files and bound them by `--max-upload-size` (a chunk of a large
file by its own cap) as they read."""

from __future__ import annotations

from starlette.requests import Request

from ferry.kernel.errors import FerryError, PayloadTooLarge
from handlers.body_limits import declared_length
from handlers.ui.resumable import CHUNK_PATH
from handlers.ui.web import PREFIX, error_of, problem

FORM_BODY_LIMIT = 100 * 1024
STREAMED_UPLOADS = frozenset({PREFIX + "/edit/upload", PREFIX + "/imports/upload", CHUNK_PATH})
BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


class FormBodyCap:
    def __init__(self, app, limit: int = FORM_BODY_LIMIT):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] != "http"
            or scope["method"] in BODILESS
            or scope["path"] in STREAMED_UPLOADS
        ):
            await self.app(scope, receive, send)
            return
        try:
            declared = declared_length(scope)
            if declared is not None and declared > self.limit:
                raise PayloadTooLarge(self.limit)
            messages = await self._gathered(receive)
        except FerryError as refused:
            response = problem(Request(scope), *error_of(refused))
            if isinstance(refused, PayloadTooLarge):
                # The rest of the body is never read.
                response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _gathered(self, receive) -> list[dict]:
        """The whole body's messages, refused once they pass the limit."""
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            size += len(message.get("body", b""))
            if size > self.limit:
                raise PayloadTooLarge(self.limit)
            if not message.get("more_body", False):
                return messages
