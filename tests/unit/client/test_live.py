"""The client's event stream: parsing, and going on after the server ends a stream."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ferry.client.api import ApiError, FerryClient, Target
from ferry.client.live import EventStream, download_updates, parse_events


def test_events_are_parsed_and_comments_skipped():
    lines = [
        ": connected",
        "",
        "id: 7",
        "event: download.progress",
        'data: {"type": "download.progress", "download": {"id": "d1"}}',
        "",
        ": keep-alive",
        "",
        "event: import.step",
        'data: {"operation":',
        'data:  {"id": "o1"}}',
        "",
    ]
    assert list(parse_events(lines)) == [
        ("7", "download.progress", {"type": "download.progress", "download": {"id": "d1"}}),
        (None, "import.step", {"operation": {"id": "o1"}}),
    ]


class StreamServer:
    """Serves one event per connection and ends the stream; keeps each Last-Event-ID."""

    def __init__(self, status: int = 200):
        self.last_ids: list[str | None] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner.last_ids.append(self.headers.get("Last-Event-ID"))
                n = len(owner.last_ids)
                body = (
                    f'id: {n}\nevent: download.progress\ndata: {{"download": {{"id": "d{n}"}}}}\n\n'
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.client = FerryClient(Target(f"http://127.0.0.1:{self.server.server_port}", "t"))

    def __enter__(self) -> StreamServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_ended_stream_is_opened_again_after_the_last_id_read():
    with StreamServer() as server, EventStream(server.client) as stream:
        updates = download_updates(stream)
        assert [next(updates)["id"] for _ in range(3)] == ["d1", "d2", "d3"]
    assert server.last_ids[:3] == [None, "1", "2"]


def test_a_refused_stream_is_an_api_error():
    with StreamServer(status=401) as server, pytest.raises(ApiError):
        EventStream(server.client)
