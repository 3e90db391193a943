"""The HTTP server's own limits, as a subclass of uvicorn's httptools protocol.

uvicorn reads a request head of any size and waits for it forever: a 64 MiB header was
accepted, four unfinished 100 MiB headers held 400 MiB, and a connection that sends
nothing, or half a head, stays open until the client leaves (uvicorn's keep-alive
timeout only runs between answers). A request body may stall just as long. Per
connection, this protocol adds:

- a head size limit: once the request line and headers pass `max_head_size`, the
  client gets 431 and the connection closes. Bytes are counted as they arrive, so an
  unfinished head holds at most the limit plus one read (256 KiB);
- a head timeout: the whole head must arrive within `head_timeout` seconds of the
  connection opening or of the previous answer ending (408 and close, or a plain close
  when nothing arrived);
- a body timeout: a body with no byte for `body_timeout` seconds while the app waits
  for it gets 408 and the connection closes;
- a connection cap: a connection that makes more than `max_connections` closes the
  connection that has been idle longest (between requests, or still sending its head),
  so slow or idle clients cannot hold every slot. uvicorn's own `limit_concurrency`
  then answers 503 when every connection is busy.

It relies on uvicorn's HttpToolsProtocol internals (`cycle`, `connections`, `flow`,
`pipeline`, `send_400_response` and the parser callbacks), read in uvicorn 0.55
(`WRITTEN_AGAINST`); a test fails when the installed uvicorn is another minor version.
"""

from __future__ import annotations

import asyncio
import http
import itertools

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from handlers.errors import envelope_bytes

# The uvicorn minor versions whose protocol internals this subclass was read against.
WRITTEN_AGAINST = ((0, 55),)


def applies_to(uvicorn_version: str) -> bool:
    return tuple(int(part) for part in uvicorn_version.split(".")[:2]) in WRITTEN_AGAINST


# Orders connections by when they became idle (the event loop's clock may not tell
# apart connections accepted together).
_IDLE_ORDER = itertools.count()


class HeadTooLarge(Exception):
    """Raised inside a parser callback to stop the parser; answered with 431."""


class BoundedHttpProtocol(HttpToolsProtocol):
    # Set per server by `bounded_protocol`, from the server's settings.
    max_head_size: int
    head_timeout: float
    body_timeout: float
    max_connections: int

    # --- connection -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._in_head = False
        self._heads_begun = 0
        self._head_reported = 0
        self._head_read = 0
        self._head_too_large = False
        self._idle_since = 0
        super().connection_made(transport)
        self._wait_for_head()
        self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # A chunk that starts inside a head and leaves it unfinished is all head.
        counting, begun = self._in_head, self._heads_begun
        super().data_received(data)
        if self.transport.is_closing():
            return
        if counting and self._in_head and begun == self._heads_begun:
            self._head_read += len(data)
            if self._head_read > self.max_head_size:
                self._refuse(431, "The request head is larger than the server accepts.")
                return
        if self._body_timer is not None:
            self._arm_body_timer()

    # --- parser callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._heads_begun += 1
        self._head_reported = self._head_read = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count_head(len(name) + len(value) + 4)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel(self._head_timer)
        self._head_timer = None
        super().on_headers_complete()
        self._arm_body_timer()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._cancel(self._body_timer)
        self._body_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._idle():
            self._wait_for_head()

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._refuse(431, "The request head is larger than the server accepts.")
        else:
            super().send_400_response(msg)

    # --- limits ---------------------------------------------------------------------

    def _count_head(self, size: int) -> None:
        self._head_reported += size
        if self._head_reported > self.max_head_size:
            self._head_too_large = True
            raise HeadTooLarge()

    def _idle(self) -> bool:
        """No request in progress: between requests, or still sending a head."""
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _wait_for_head(self) -> None:
        self._cancel(self._head_timer)
        self._idle_since = next(_IDLE_ORDER)
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._idle():
            return
        if self._in_head:
            self._refuse(408, "The request head did not arrive in time.")
        else:
            self.transport.close()

    def _arm_body_timer(self) -> None:
        self._cancel(self._body_timer)
        self._body_timer = None
        if self.cycle is not None and self.cycle.more_body and not self.cycle.response_complete:
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_stalled)

    def _body_stalled(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or not cycle.more_body:
            return
        if self.flow.read_paused:
            # The app is not reading, so the client cannot send: not the client's fault.
            self._arm_body_timer()
        elif cycle.response_started:
            self.transport.close()
        else:
            self._refuse(408, "The request body stopped arriving.")

    def _make_room(self) -> None:
        if len(self.connections) <= self.max_connections:
            return
        idle = [
            other
            for other in self.connections
            if other is not self
            and isinstance(other, BoundedHttpProtocol)
            and not other.transport.is_closing()
            and other._idle()
        ]
        if idle:
            longest = min(idle, key=lambda other: other._idle_since)
            longest.transport.close()
            # It leaves the count now, not when its close completes, so the request
            # that follows is not refused for a connection already going.
            self.connections.discard(longest)

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` with the error envelope and close the connection."""
        body = envelope_bytes(message)
        head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
        self._cancel_timers()

    def _cancel_timers(self) -> None:
        self._cancel(self._head_timer)
        self._cancel(self._body_timer)
        self._head_timer = self._body_timer = None

    @staticmethod
    def _cancel(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()


def bounded_protocol(
    *, max_head_size: int, head_timeout: float, body_timeout: float, max_connections: int
) -> type[BoundedHttpProtocol]:
    """The protocol class for one server, with its limits."""
    return type(
        "FerryHttpProtocol",
        (BoundedHttpProtocol,),
        {
            "max_head_size": max_head_size,
            "head_timeout": head_timeout,
            "body_timeout": body_timeout,
            "max_connections": max_connections,
        },
    )
