"""The server's live events (`GET /api/v1/events`) for the client's live views.

A view opens the stream first and reads the state it starts from after, so no change
can fall between the two. When the server ends the stream (it restarted, or this
client fell too far behind) the stream is opened again with the last id read, and the
server replays what came after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import requests

from ferry.client.api import ConnectionFailed, FerryClient

EVENTS_PATH = "/api/v1/events"
# The server sends a keep-alive comment after 15 s of quiet; four missed means it is gone.
STREAM_READ_TIMEOUT = 60.0


def parse_events(lines: Iterable[str]) -> Iterator[tuple[str | None, str, dict]]:
    """(id, type, data) for each event of an event stream's lines; comments skipped."""
    event_id = kind = None
    data: list[str] = []
    for line in lines:
        if not line:
            if kind is not None and data:
                yield event_id, kind, json.loads("\n".join(data))
            event_id = kind = None
            data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "event":
            kind = value
        elif name == "data":
            data.append(value)


class EventStream:
    """Iterating gives (type, data) for every event the caller may see, for as long as
    it is iterated; opened (and subscribed) on construction."""

    def __init__(self, client: FerryClient):
        self._client = client
        self._last_id: str | None = None
        self._response = self._open()

    def _open(self) -> requests.Response:
        headers = {"Accept": "text/event-stream"}
        if self._last_id is not None:
            headers["Last-Event-ID"] = self._last_id
        return self._client.open_stream(EVENTS_PATH, headers, STREAM_READ_TIMEOUT)

    def __iter__(self) -> Iterator[tuple[str, dict]]:
        while True:
            try:
                lines = self._response.iter_lines(decode_unicode=True)
                for event_id, kind, data in parse_events(lines):
                    if event_id is not None:
                        self._last_id = event_id
                    yield kind, data
            except requests.exceptions.RequestException as exc:
                raise ConnectionFailed(
                    self._client.server, f"the event stream broke: {exc}"
                ) from None
            finally:
                self._response.close()
            self._response = self._open()

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def download_updates(stream: EventStream) -> Iterator[dict]:
    """The download of each `download.*` event."""
    for _, data in stream:
        download = data.get("download")
        if download is not None:
            yield download


def operation_updates(stream: EventStream) -> Iterator[dict]:
    """The operation of each `import.*` event."""
    for _, data in stream:
        operation = data.get("operation")
        if operation is not None:
            yield operation
