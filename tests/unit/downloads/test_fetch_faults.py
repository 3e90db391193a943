"""Remote faults the fetch tests did not cover yet: a reset mid-body, a body longer
than its Content-Length, and headers that start but never finish."""

from __future__ import annotations

import dataclasses
import socket
import struct

from ferry.downloads.fetch import fetch_to_directory
from ferry.downloads.policy import DOWNLOAD_TIMEOUT, NETWORK_ERROR, FetchError
from tests.support.downloads import LOCAL, listing
from tests.support.remote import pattern_bytes

pytest_plugins = ("tests.support.download_fixtures",)


def failure(url, directory, policy=LOCAL) -> FetchError:
    try:
        fetch_to_directory(url, directory, policy=policy)
    except FetchError as error:
        assert listing(directory) == []  # no .part file, no half file
        return error
    raise AssertionError("the fetch succeeded")


def test_a_connection_reset_mid_body_fails_and_leaves_nothing(remote, target_dir):
    def reset(h):
        h.send_head(200, [("Content-Length", str(1 << 20))])
        h.wfile.write(pattern_bytes(100_000))
        h.wfile.flush()
        # SO_LINGER 0: close() sends a TCP RST instead of a FIN.
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()

    error = failure(remote.route("/reset", reset), target_dir)
    assert error.code == NETWORK_ERROR
    assert error.message


def test_bytes_beyond_the_content_length_are_not_saved(remote, target_dir):
    def overlong(h):
        h.send_head(200, [("Content-Length", "1000")])
        h.wfile.write(pattern_bytes(50_000))

    result = fetch_to_directory(remote.route("/more", overlong), target_dir, policy=LOCAL)
    assert result.size == 1000
    assert (target_dir / result.filename).read_bytes() == pattern_bytes(1000)
    assert listing(target_dir) == [result.filename]


def test_headers_that_never_finish_time_out(remote, target_dir):
    def half_headers(h):
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n")
        h.wfile.flush()
        remote.release.wait(60)

    policy = dataclasses.replace(LOCAL, timeout=0.5, idle_timeout=30)
    assert failure(remote.route("/half", half_headers), target_dir, policy).code == DOWNLOAD_TIMEOUT


def test_headers_dripping_forever_hit_the_total_deadline(remote, target_dir):
    def dripping(h):
        h.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for number in range(10_000):
            h.wfile.write(f"X-Drip-{number}: x\r\n".encode())
            h.wfile.flush()
            if remote.release.wait(0.02):
                return

    policy = dataclasses.replace(LOCAL, timeout=0.5, idle_timeout=30)
    error = failure(remote.route("/drip-headers", dripping), target_dir, policy)
    assert error.code in (DOWNLOAD_TIMEOUT, NETWORK_ERROR)
