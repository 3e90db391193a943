"""Deadlines, idle timeouts and cancel end a fetch, and each network failure is named."""

from __future__ import annotations

import dataclasses
import socket
import struct
import threading

import pytest

from ferry.downloads.policy import DOWNLOAD_CANCELLED, DOWNLOAD_TIMEOUT, NETWORK_ERROR, FetchError
from tests.support.downloads import LOCAL, fetch, fetch_failure, listing, unanswered_port
from tests.support.remote import pattern_bytes, wait_until

pytest_plugins = ("tests.support.download_fixtures",)


def test_refused_connections(target_dir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = fetch_failure(f"http://127.0.0.1:{port}/x", target_dir)
    assert error.code == NETWORK_ERROR
    assert "refused" in error.message


def test_connecting_too_long_is_a_timeout(target_dir):
    policy = dataclasses.replace(LOCAL, connect_timeout=0.3)
    with unanswered_port() as port:
        error = fetch_failure(f"http://127.0.0.1:{port}/x", target_dir, policy)
    assert (error.code, error.message) == (
        DOWNLOAD_TIMEOUT,
        "could not connect to 127.0.0.1 within 0.3 s",
    )


def test_tls_failures(remote, target_dir):
    error = fetch_failure(remote.file("/a", b"plain").replace("http:", "https:"), target_dir)
    assert error.code == NETWORK_ERROR
    assert "TLS" in error.message


def test_a_stalled_body_times_out(remote, target_dir):
    policy = dataclasses.replace(LOCAL, idle_timeout=0.3)
    error = fetch_failure(remote.stall("/stall"), target_dir, policy)
    assert error.code == DOWNLOAD_TIMEOUT
    assert "sent nothing for 0.3 s" in error.message


def test_a_server_that_never_answers_times_out(remote, target_dir):
    policy = dataclasses.replace(LOCAL, idle_timeout=0.3)
    assert (
        fetch_failure(remote.stall("/silent", before_headers=True), target_dir, policy).code
        == DOWNLOAD_TIMEOUT
    )


def test_the_maximum_duration_ends_a_body_that_keeps_dripping(remote, target_dir):
    policy = dataclasses.replace(LOCAL, timeout=30, max_duration=0.5, idle_timeout=30)
    error = fetch_failure(remote.trickle("/drip", pieces=200, pause=0.05), target_dir, policy)
    assert error.code == DOWNLOAD_TIMEOUT
    assert "longer than its maximum of 0.5 s" in error.message


def test_the_timeout_without_progress_also_covers_waiting_for_headers(remote, target_dir):
    policy = dataclasses.replace(LOCAL, timeout=0.3, idle_timeout=30)
    assert (
        fetch_failure(remote.stall("/silent", before_headers=True), target_dir, policy).code
        == DOWNLOAD_TIMEOUT
    )


def test_one_watchdog_ends_many_transfers_each_at_its_own_deadline(remote, target_dir, tmp_path):
    deadlines = [0.3, 0.6, 0.9]
    outcomes: dict[float, FetchError] = {}

    def run(deadline: float) -> None:
        policy = dataclasses.replace(LOCAL, timeout=deadline, idle_timeout=30)
        directory = tmp_path / str(deadline)
        directory.mkdir()
        with pytest.raises(FetchError) as caught:
            fetch(remote.stall(f"/stall-{deadline}"), directory, policy)
        outcomes[deadline] = caught.value

    threads = [threading.Thread(target=run, args=(d,)) for d in deadlines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert {d: e.code for d, e in outcomes.items()} == dict.fromkeys(deadlines, DOWNLOAD_TIMEOUT)
    for deadline, error in outcomes.items():
        assert f"no data arrived for {deadline:g} s" in error.message
    # With nothing left to watch, its thread goes too.
    assert wait_until(lambda: "ferry-fetch-watchdog" not in {t.name for t in threading.enumerate()})


@pytest.mark.timeout(20)
def test_cancelling_stops_a_stalled_transfer(remote, target_dir):
    policy = dataclasses.replace(LOCAL, idle_timeout=60)
    cancel = threading.Event()
    url = remote.stall("/stall")
    threading.Thread(
        target=lambda: (
            wait_until(lambda: any(n.endswith(".part") for n in listing(target_dir)))
            and cancel.set()
        )
    ).start()
    error = fetch_failure(url, target_dir, policy, cancel=cancel)
    assert error.code == DOWNLOAD_CANCELLED
    assert listing(target_dir) == []


def test_a_connection_reset_mid_body_fails_and_leaves_nothing(remote, target_dir):
    def reset(h):
        h.send_head(200, [("Content-Length", str(1 << 20))])
        h.wfile.write(pattern_bytes(100_000))
        h.wfile.flush()
        # SO_LINGER 0: close() sends a TCP RST instead of a FIN.
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()

    error = fetch_failure(remote.route("/reset", reset), target_dir)
    assert error.code == NETWORK_ERROR
    assert error.message
    assert listing(target_dir) == []


def test_headers_that_never_finish_time_out(remote, target_dir):
    def half_headers(h):
        h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n")
        h.wfile.flush()
        remote.release.wait(60)

    policy = dataclasses.replace(LOCAL, timeout=0.5, idle_timeout=30)
    error = fetch_failure(remote.route("/half", half_headers), target_dir, policy)
    assert error.code == DOWNLOAD_TIMEOUT
    assert listing(target_dir) == []


def test_headers_dripping_forever_hit_the_total_deadline(remote, target_dir):
    def dripping(h):
        h.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for number in range(10_000):
            h.wfile.write(f"X-Drip-{number}: x\r\n".encode())
            h.wfile.flush()
            if remote.release.wait(0.02):
                return

    policy = dataclasses.replace(LOCAL, timeout=0.5, idle_timeout=30)
    error = fetch_failure(remote.route("/drip-headers", dripping), target_dir, policy)
    assert error.code in (DOWNLOAD_TIMEOUT, NETWORK_ERROR)
    assert listing(target_dir) == []
