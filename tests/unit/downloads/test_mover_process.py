"""A mover's side of a job, served in a thread here: what it writes and what it answers
when the socket, the disk or the job itself goes wrong."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import socket
import threading

import pytest

from ferry.downloads import mover_process


@pytest.fixture
def channel():
    """The server's end of a channel served by `mover_process.serve` in a thread."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server = threading.Thread(target=mover_process.serve, args=(theirs,), daemon=True)
    server.start()
    yield ours
    ours.close()
    server.join(5)
    assert not server.is_alive()


def run_job(channel, job: dict, fds: list[int]) -> dict:
    """The outcome of `job`, handed over with copies of `fds`."""
    copies = [os.dup(fd) for fd in fds]
    try:
        socket.send_fds(channel, [json.dumps(job).encode()], copies)
    finally:
        for copy in copies:
            os.close(copy)
    while "progress" in (answer := json.loads(channel.recv(mover_process.MESSAGE_SIZE))):
        pass
    return answer


def body_source(data: bytes, *, close: bool = True) -> tuple[socket.socket, socket.socket]:
    """A socket whose peer has sent `data` (and hung up, with `close`)."""
    sender, receiver = socket.socketpair()
    receiver.setblocking(False)
    threading.Thread(
        target=lambda: (sender.sendall(data), close and sender.close()), daemon=True
    ).start()
    return sender, receiver


def job(start: int, end: int, idle_ms: int = 5000) -> dict:
    return {"start": start, "end": end, "idle_ms": idle_ms, "algorithms": ["sha256", "md5"]}


def test_the_digests_cover_the_bytes_already_in_the_file(channel, tmp_path):
    before, body = b"h" * 777, os.urandom(3 * mover_process.BUFFER_SIZE + 11)
    path = tmp_path / "body.part"
    path.write_bytes(before)
    fd = os.open(path, os.O_RDWR)
    _, receiver = body_source(body)
    outcome = run_job(
        channel,
        job(len(before), len(before) + len(body)),
        [receiver.fileno(), fd, fd],
    )
    os.close(fd)
    receiver.close()
    assert outcome["done"] == len(before) + len(body)
    assert outcome["digests"] == {
        "sha256": hashlib.sha256(before + body).hexdigest(),
        "md5": hashlib.md5(before + body).hexdigest(),
    }
    assert path.read_bytes() == before + body


def test_a_disk_that_refuses_the_write_is_told_with_its_errno(channel, tmp_path):
    path = tmp_path / "body.part"
    path.write_bytes(b"")
    read_only = os.open(path, os.O_RDONLY)
    _, receiver = body_source(b"x" * 100_000)
    outcome = run_job(channel, job(0, 100_000), [receiver.fileno(), read_only, read_only])
    os.close(read_only)
    receiver.close()
    assert outcome["reason"] == mover_process.ENDED_WRITE
    assert outcome["errno"] == errno.EBADF


def test_direct_writes_refused_go_through_the_page_cache(channel, tmp_path, monkeypatch):
    path = tmp_path / "body.part"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDWR)
    # Stands for the descriptor past the page cache: the only one open write-only.
    direct = os.open(path, os.O_WRONLY)
    real_pwrite = os.pwrite
    refused: list[int] = []

    def pwrite(target, data, offset):
        if fcntl.fcntl(target, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(target, data, offset)

    monkeypatch.setattr(mover_process.os, "pwrite", pwrite)
    body = os.urandom(2 * mover_process.BUFFER_SIZE + 5)
    _, receiver = body_source(body)
    outcome = run_job(channel, job(0, len(body)), [receiver.fileno(), fd, direct])
    for opened in (fd, direct):
        os.close(opened)
    receiver.close()
    assert outcome["done"] == len(body)
    assert path.read_bytes() == body
    assert refused == [0]  # asked once, then the page cache for the rest


def test_a_silent_source_ends_as_idle_and_keeps_what_arrived(channel, tmp_path):
    path = tmp_path / "body.part"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDWR)
    sender, receiver = body_source(b"y" * 5000, close=False)
    outcome = run_job(channel, job(0, 1_000_000, idle_ms=200), [receiver.fileno(), fd, fd])
    os.close(fd)
    sender.close()
    receiver.close()
    assert outcome == {"ended": 5000, "reason": mover_process.ENDED_IDLE}
    assert path.read_bytes() == b"y" * 5000


def test_a_malformed_job_is_answered_and_the_channel_serves_on(channel, tmp_path):
    path = tmp_path / "body.part"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDWR)
    broken = run_job(channel, {"start": 0}, [fd, fd, fd])
    assert broken["reason"] == mover_process.ENDED_BROKEN and "end" in broken["message"]
    _, receiver = body_source(b"z" * 10)
    fine = run_job(channel, job(0, 10), [receiver.fileno(), fd, fd])
    os.close(fd)
    receiver.close()
    assert fine["done"] == 10 and path.read_bytes() == b"z" * 10


def test_what_arrived_is_told_before_the_mover_waits_for_more(channel, tmp_path):
    path = tmp_path / "body.part"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDWR)
    sender, receiver = body_source(b"w" * 5000, close=False)
    copies = [os.dup(receiver.fileno()), os.dup(fd), os.dup(fd)]
    socket.send_fds(channel, [json.dumps(job(0, 1_000_000)).encode()], copies)
    for copy in copies:
        os.close(copy)
    channel.settimeout(2)  # well inside the job's 5 s idle limit
    assert json.loads(channel.recv(mover_process.MESSAGE_SIZE)) == {"progress": 5000}
    sender.close()
    channel.settimeout(None)
    outcome = json.loads(channel.recv(mover_process.MESSAGE_SIZE))
    os.close(fd)
    receiver.close()
    assert outcome == {"ended": 5000, "reason": mover_process.ENDED_EOF}
