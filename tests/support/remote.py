"""A local stand-in for the remote servers downloads talk to.

`RemoteServer` listens on 127.0.0.1 (port 0) in a thread and answers routes the test
sets up: generated big files, slow or stalled bodies, errors, redirects, truncated
and chunked bodies, gzip and hostile Content-Disposition headers. It logs every
request and counts every accepted connection, so a test can prove that a refused
download never reached it.
"""

from __future__ import annotations

import contextlib
import gzip
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[["_RequestHandler"], None]
BLOCK = 64 * 1024


def pattern_bytes(size: int, offset: int = 0) -> bytes:
    """Deterministic, non-repeating-looking content, so a test can check every byte."""
    out = bytearray()
    position = offset
    while len(out) < size:
        block = (position // 251).to_bytes(8, "big") * 32
        take = min(len(block), size - len(out))
        out += block[:take]
        position += take
    return bytes(out)


@dataclass
class LoggedRequest:
    method: str
    path: str
    headers: dict[str, str]


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        remote = self.server.remote
        remote._log(LoggedRequest("GET", self.path, dict(self.headers.items())))
        route = remote._routes.get(self.path.split("?", 1)[0])
        self.close_connection = True
        if route is None:
            self.send_plain(404, b"no such route")
            return
        # The client going away mid-answer is something several tests cause on purpose.
        with contextlib.suppress(OSError):
            route(self)

    def log_message(self, *args) -> None:
        pass

    # Helpers for routes.

    def send_head(self, status: int, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_response_only(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()

    def send_plain(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_head(status, [("Content-Length", str(len(body))), *headers])
        self.wfile.write(body)

    def send_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    remote: RemoteServer

    def verify_request(self, request, client_address) -> bool:
        self.remote._count_connection()
        return True


class RemoteServer:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._routes: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self.requests: list[LoggedRequest] = []
        self.connections = 0
        # Stalled routes wait on this; stop() sets it so no handler outlives the test.
        self.release = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _RequestHandler)
        self.scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._server.remote = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> RemoteServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RemoteServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _log(self, request: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    @property
    def untouched(self) -> bool:
        """No connection was ever accepted, let alone a request read."""
        with self._lock:
            return self.connections == 0 and not self.requests

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    # --- routes -------------------------------------------------------------------

    def route(self, path: str, handler: Handler) -> str:
        self._routes[path] = handler
        return self.url(path)

    def file(
        self, path: str, body: bytes, headers: Iterable[tuple[str, str]] = (), status: int = 200
    ) -> str:
        headers = list(headers)
        return self.route(path, lambda h: h.send_plain(status, body, headers))

    def status(self, path: str, code: int) -> str:
        return self.file(path, f"status {code}".encode(), status=code)

    def generated(self, path: str, size: int, *, announce: bool = True) -> str:
        """`size` pattern bytes made on the fly; chunked without a length if not `announce`."""

        def handler(h: _RequestHandler) -> None:
            if announce:
                h.send_head(200, [("Content-Length", str(size))])
            else:
                h.send_head(200, [("Transfer-Encoding", "chunked")])
            sent = 0
            while sent < size:
                block = pattern_bytes(min(BLOCK, size - sent), sent)
                if announce:
                    h.wfile.write(block)
                else:
                    h.send_chunk(block)
                sent += len(block)
            if not announce:
                h.wfile.write(b"0\r\n\r\n")

        return self.route(path, handler)

    def ranged(
        self,
        path: str,
        size: int,
        *,
        honour_range: bool = True,
        pause: float = 0,
        validators: Iterable[tuple[str, str]] = (),
        version: int = 0,
    ) -> str:
        """`size` pattern bytes advertising `Accept-Ranges: bytes`; a `Range: bytes=a-b`
        gets a 206 unless `honour_range` is off. `pause` slows every block down.

        `validators` (such as `("ETag", '"v1"')`) are sent with every answer, and a Range
        whose If-Range names anything else gets the whole file, as RFC 9110 has it.
        Another `version` is other content of the same size.
        """

        # Built once: pattern_bytes(n, offset) is not a slice of a longer pattern.
        body = pattern_bytes(size, version * 7919)
        validators = list(validators)

        def handler(h: _RequestHandler) -> None:
            start, end = 0, size - 1
            asked = h.headers.get("Range", "")
            condition = h.headers.get("If-Range")
            unchanged = condition is None or condition in (value for _, value in validators)
            ranged = honour_range and asked.startswith("bytes=") and unchanged
            if ranged:
                first, _, last = asked[len("bytes=") :].partition("-")
                start, end = int(first), min(int(last or size - 1), size - 1)
            headers = [("Content-Length", str(end - start + 1)), ("Accept-Ranges", "bytes")]
            headers += validators
            if ranged:
                headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
            h.send_head(206 if ranged else 200, headers)
            position = start
            while position <= end:
                block = body[position : min(position + BLOCK, end + 1)]
                h.wfile.write(block)
                position += len(block)
                if pause and self.release.wait(pause):
                    return

        return self.route(path, handler)

    def endless(self, path: str) -> str:
        """A chunked body that never ends, until the client hangs up."""

        def handler(h: _RequestHandler) -> None:
            h.send_head(200, [("Transfer-Encoding", "chunked")])
            block = pattern_bytes(BLOCK)
            while not self.release.is_set():
                h.send_chunk(block)

        return self.route(path, handler)

    def trickle(
        self, path: str, *, pieces: int, piece: bytes = b"x" * 1024, pause: float = 0.2
    ) -> str:
        """A body sent in small pieces with a pause between them."""

        def handler(h: _RequestHandler) -> None:
            h.send_head(200, [("Content-Length", str(pieces * len(piece)))])
            for _ in range(pieces):
                h.wfile.write(piece)
                h.wfile.flush()
                if self.release.wait(pause):
                    return

        return self.route(path, handler)

    def stall(
        self,
        path: str,
        *,
        before_headers: bool = False,
        sent_first: int = 1024,
        length: int | None = 1 << 20,
    ) -> str:
        """Sends headers and `sent_first` bytes, then nothing until the test ends.

        With `length=None` the body is chunked, so its size is unknown to the client.
        """

        def handler(h: _RequestHandler) -> None:
            if before_headers:
                self.release.wait(60)
                return
            if length is None:
                h.send_head(200, [("Transfer-Encoding", "chunked")])
                h.send_chunk(pattern_bytes(sent_first))
            else:
                h.send_head(200, [("Content-Length", str(length))])
                h.wfile.write(pattern_bytes(sent_first))
            h.wfile.flush()
            self.release.wait(60)

        return self.route(path, handler)

    def truncated(self, path: str, *, announced: int, sent: int) -> str:
        def handler(h: _RequestHandler) -> None:
            h.send_head(200, [("Content-Length", str(announced))])
            h.wfile.write(pattern_bytes(sent))

        return self.route(path, handler)

    def cut_once(self, path: str, body: bytes, *, sent: int) -> str:
        """`body` with an ETag and `Accept-Ranges: bytes`; the first whole-file answer
        stops after `sent` bytes, and `Range: bytes=N-` gets a 206 of the rest."""
        cut = threading.Event()

        def handler(h: _RequestHandler) -> None:
            headers = [("ETag", '"v1"'), ("Accept-Ranges", "bytes")]
            asked = h.headers.get("Range")
            if asked is None and not cut.is_set():
                cut.set()
                h.send_head(200, [("Content-Length", str(len(body))), *headers])
                h.wfile.write(body[:sent])
                return
            start = int(asked.removeprefix("bytes=").split("-")[0]) if asked else 0
            if asked:
                headers.append(("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}"))
            h.send_head(
                206 if asked else 200, [("Content-Length", str(len(body) - start)), *headers]
            )
            h.wfile.write(body[start:])

        return self.route(path, handler)

    def gzipped(self, path: str, payload: bytes) -> bytes:
        """Serves `payload` gzip-encoded with Content-Length; returns the bytes on the wire."""
        body = gzip.compress(payload, mtime=0)
        self.file(path, body, [("Content-Encoding", "gzip"), ("Content-Type", "text/plain")])
        return body

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.route(path, lambda h: h.send_plain(status, b"", [("Location", location)]))

    def slow_headers(self, path: str, delay: float) -> str:
        def handler(h: _RequestHandler) -> None:
            if not self.release.wait(delay):
                h.send_plain(200, b"late")

        return self.route(path, handler)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `condition` until true; for waiting on other threads, never for timing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()
