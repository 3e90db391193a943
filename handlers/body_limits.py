"""Request body limits per route, enforced before a body is read into memory.

`uploadImportFile` may carry up to `--max-upload-size` (as base64 in JSON, a third
more) and a file PUT to the tree up to `--max-upload-size` itself; every other route
takes at most `--max-json-body`. A body whose Content-Length is over its route's limit
is refused at once, unread; a chunked body is counted as it arrives and refused when
it passes the limit, so no more than the limit is ever held.

Chunked bodies of the small routes are gathered here (they are small by definition)
and handed on with a Content-Length, which Connexion's validation needs to see a body.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect

from ferry.kernel.errors import InvalidInput, PayloadTooLarge
from handlers.observe import operation_of

UPLOAD_OPERATION = "handlers.imports.upload_import_file"
# Their bodies are the file itself (or its next part), streamed to disk by the handler.
FILE_UPLOAD_OPERATIONS = ("handlers.file_changes.upload_file", "handlers.file_changes.append_file")
# Room for the fields around an upload's file: names, a password, multipart part headers.
UPLOAD_ENVELOPE = 64 * 1024


def upload_body_limit(max_upload_size: int) -> int:
    """The largest body that can carry a file of `max_upload_size` bytes: base64 in JSON
    grows it by a third."""
    return 4 * -(-max_upload_size // 3) + UPLOAD_ENVELOPE


def declared_length(scope) -> int | None:
    """The request's Content-Length, or None when it has none.

    Raises:
        InvalidInput: the header is not a single whole number.
    """
    values = [value for name, value in scope.get("headers", ()) if name == b"content-length"]
    if not values:
        return None
    if len(set(values)) > 1 or not values[0].isdigit():
        raise InvalidInput("The Content-Length header is not a whole number.")
    return int(values[0])


def _counted(receive, limit: int):
    """`receive` that raises PayloadTooLarge once more than `limit` body bytes arrived."""
    received = 0

    async def receive_counted():
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(limit)
        return message

    return receive_counted


async def read_body(receive, limit: int) -> bytes:
    """The whole body, at most `limit` bytes.

    Raises:
        PayloadTooLarge: more than `limit` bytes arrived.
        ClientDisconnect: the client left before the body ended.
    """
    parts = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(limit)
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def replay(body: bytes, receive):
    """A `receive` that hands on `body` in one message, then defers to `receive` (whose
    body is used up, so it only reports the client leaving)."""
    sent = False

    async def receive_replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_replayed


def with_length(scope, length: int) -> dict:
    """A copy of `scope` whose headers declare `length` and no transfer coding."""
    headers = [
        (name, value)
        for name, value in scope["headers"]
        if name not in (b"content-length", b"transfer-encoding")
    ]
    headers.append((b"content-length", str(length).encode()))
    return {**scope, "headers": headers}


class BodyLimitMiddleware:
    """Refuses a body over its route's limit with 413 before reading it."""

    def __init__(self, app, *, json_limit: int, upload_limit: int, file_limit: int):
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.file_limit = file_limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        operation = operation_of(scope)
        upload = operation == UPLOAD_OPERATION or operation in FILE_UPLOAD_OPERATIONS
        if operation in FILE_UPLOAD_OPERATIONS:
            limit = self.file_limit
        else:
            limit = self.upload_limit if operation == UPLOAD_OPERATION else self.json_limit
        length = declared_length(scope)
        if length is not None and length > limit:
            raise PayloadTooLarge(limit)
        if length is None and not upload and _is_chunked(scope):
            body = await read_body(receive, limit)
            scope, receive = with_length(scope, len(body)), replay(body, receive)
        else:
            receive = _counted(receive, limit)
        await self.app(scope, receive, send)


def _is_chunked(scope) -> bool:
    return any(
        name == b"transfer-encoding" and b"chunked" in value.lower()
        for name, value in scope.get("headers", ())
    )
