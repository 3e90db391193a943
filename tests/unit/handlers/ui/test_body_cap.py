"""The page's form body cap: bodies over the limit are refused with the error page and
413, whether they announce their length or arrive chunked; others reach the view whole."""

import asyncio

from handlers.ui.body_cap import FormBodyCap


def call(path: str, chunks: list[bytes], *, length: int | str | None = None):
    """Runs the cap over an app that echoes the body it read; returns (status, body, read)."""
    read = []

    async def app(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        read.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    headers = [] if length is None else [(b"content-length", str(length).encode())]
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": headers,
        "query_string": b"",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
    }
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(FormBodyCap(app, limit=100)(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body, read


def test_a_small_chunked_body_reaches_the_view_whole():
    status, body, read = call("/ui/admin/users", [b"a" * 60, b"b" * 40])
    assert status == 200 and read == [b"a" * 60 + b"b" * 40]


def test_a_chunked_body_over_the_cap_is_refused_before_the_view_runs():
    status, body, read = call("/ui/admin/users", [b"a" * 60, b"b" * 60])
    assert status == 413 and read == []
    assert b"error-payload-too-large" in body and b"Something went wrong" in body


def test_an_announced_length_over_the_cap_is_refused_unread():
    status, body, read = call("/ui/login", [b"x"], length=10_000)
    assert status == 413 and read == []


def test_a_malformed_length_is_refused_with_the_error_page():
    status, body, read = call("/ui/login", [b"x"], length="ten")
    assert status == 400 and read == [] and b"Content-Length" in body


def test_the_streamed_uploads_are_left_to_their_own_limit():
    status, _, read = call("/ui/imports/upload", [b"a" * 500])
    assert status == 200 and read == [b"a" * 500]
