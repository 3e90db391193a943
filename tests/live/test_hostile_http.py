"""Hostile HTTP against a real `ferry serve`: huge and unfinished heads, idle and
half-open connections, stalled and oversized bodies. Each costs the server little, is
closed in bounded time, and never keeps a real client waiting.

Paired with tests/api/test_hostile_input.py (hostile bodies through the app)."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest
import requests

from ferry.kernel.logs import LINE_LIMIT
from tests.live.test_serve import free_port, start, wait_until_up

pytestmark = [pytest.mark.live, pytest.mark.slow]

HEADER_TIMEOUT = 2
KEEP_ALIVE_TIMEOUT = 1
BODY_TIMEOUT = 2
MIB = 1024**2


class Server:
    def __init__(self, tmp_path: Path, *flags: str):
        self.port = free_port()
        self.log = tmp_path / f"serve-{self.port}.log"
        self._output = self.log.open("w")
        self.process = start(tmp_path / f"data-{self.port}", self.port, *flags, output=self._output)
        self.base = f"http://127.0.0.1:{self.port}"
        wait_until_up(self.port, self.process)

    def rss(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) * 1024

    def connect(self, timeout: float = 10) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def answers(self, within: float = 3) -> bool:
        started = time.monotonic()
        response = requests.get(f"{self.base}/api/info", timeout=within)
        return response.status_code == 200 and time.monotonic() - started < within

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=20)
        self._output.close()
        return self.log.read_text()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(
        tmp_path_factory.mktemp("hostile-http"),
        "--header-timeout",
        str(HEADER_TIMEOUT),
        "--keep-alive-timeout",
        str(KEEP_ALIVE_TIMEOUT),
        "--body-timeout",
        str(BODY_TIMEOUT),
    )
    yield running
    log = running.stop()
    assert running.process.returncode == 0
    # Everything the battery sent left bounded lines and no traceback.
    assert "Traceback" not in log
    assert max(len(line) for line in log.splitlines()) <= LINE_LIMIT


def send_head(sock: socket.socket, header_bytes: int, finish: bool = True) -> int:
    """Send a GET whose one header holds `header_bytes` bytes, a MiB at a time; returns
    how many bytes went out before the server closed the connection."""
    sent = 0
    try:
        sock.sendall(b"GET /api/info HTTP/1.1\r\nHost: x\r\nX-Big: ")
        block = b"a" * MIB
        while sent < header_bytes:
            piece = block[: min(MIB, header_bytes - sent)]
            sock.sendall(piece)
            sent += len(piece)
        if finish:
            sock.sendall(b"\r\n\r\n")
    except OSError:  # reset or broken pipe: the server refused and closed
        pass
    return sent


def read_all(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    parts = []
    try:
        while chunk := sock.recv(65536):
            parts.append(chunk)
    except OSError:
        pass
    return b"".join(parts)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes the connection within `seconds` (reading any answer)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except TimeoutError:
        return False
    except OSError:
        return True


def test_a_64_mib_header_is_refused_long_before_it_is_sent(server):
    before = server.rss()
    with server.connect() as sock:
        sent = send_head(sock, 64 * MIB)
    assert sent < 16 * MIB
    assert server.rss() - before < 8 * MIB
    assert server.answers()


def test_a_head_over_the_limit_gets_431_in_the_envelope(server):
    with server.connect() as sock:
        send_head(sock, 70 * 1024)
        answer = read_all(sock, 5)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431")
    assert json.loads(body)["success"] is False


def test_unfinished_100_mib_heads_hold_no_memory(server):
    before = server.rss()
    sockets = [server.connect() for _ in range(4)]
    try:
        for sock in sockets:
            assert send_head(sock, 100 * MIB, finish=False) < 16 * MIB
        assert server.rss() - before < 8 * MIB
        assert server.answers()
    finally:
        for sock in sockets:
            sock.close()


def test_300_half_open_connections_starve_nobody_and_are_closed(server):
    sockets = []
    try:
        for _ in range(300):
            sock = server.connect()
            sock.sendall(b"GET /api/info HTTP/1.1\r\nHost: x\r\n")
            sockets.append(sock)
        assert server.answers(within=2)
        time.sleep(HEADER_TIMEOUT + 1)
        answers = [read_all(sock, 3) for sock in sockets]
        assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers)
    finally:
        for sock in sockets:
            sock.close()


def test_silent_and_idle_keep_alive_connections_are_closed(server):
    with server.connect() as silent, server.connect() as idle:
        idle.sendall(b"GET /api/info HTTP/1.1\r\nHost: x\r\n\r\n")
        idle.settimeout(5)
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        assert closed_within(idle, KEEP_ALIVE_TIMEOUT + 1)
        assert closed_within(silent, HEADER_TIMEOUT + 1)


def test_a_stalled_body_is_answered_408_and_closed(server):
    with server.connect() as sock:
        sock.sendall(
            b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"user": '
        )
        started = time.monotonic()
        answer = read_all(sock, BODY_TIMEOUT + 5)
    assert answer.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < BODY_TIMEOUT + 3


def test_a_body_over_the_limit_is_refused_before_it_is_sent(server):
    before = server.rss()
    with server.connect() as sock:
        sock.sendall(
            b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 209715200\r\n\r\n"
        )
        head, _, body = read_all(sock, 5).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["errorType"] == "error-payload-too-large"
    try:
        response = requests.post(
            f"{server.base}/api/v1/login",
            data=b" " * (200 * MIB),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 413
    except requests.ConnectionError:  # closed while the body was still going out
        pass
    assert server.rss() - before < 8 * MIB
    assert server.answers()


def test_past_the_connection_cap_the_longest_idle_connection_goes(tmp_path):
    capped = Server(tmp_path, "--max-connections", "20", "--header-timeout", "60")
    try:
        sockets = [capped.connect() for _ in range(30)]
        assert capped.answers()
        closed = [closed_within(sock, 0.2) for sock in sockets]
        # The oldest ten made room for the newer ones (the real client took one more).
        assert all(closed[:10]) and not any(closed[-5:])
        for sock in sockets:
            sock.close()
    finally:
        capped.stop()
