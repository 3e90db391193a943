"""The program of a body mover: a process of its own that receives, hashes and writes
download bodies handed to it by the server, so that the server's interpreter lock never
holds a transfer back (see `movers`).

It imports nothing of Ferry and little of the standard library, so that it starts in a
few milliseconds and costs a few megabytes. Each channel it is given (a SOCK_SEQPACKET
socket, by descriptor number on the command line) is served by a thread of its own, one
body at a time: a job message (JSON) carries the socket, the file open through the page
cache and the file open past it; the answer is zero or more progress messages, then one
outcome. It stops when the server closes the channels.
"""

from __future__ import annotations

import errno
import hashlib
import json
import mmap
import os
import select
import signal
import socket
import sys
import threading
import time

# A job's descriptors: the socket, the file through the page cache, the file past it.
JOB_DESCRIPTORS = 3
MESSAGE_SIZE = 64 * 1024
BUFFER_SIZE = 512 * 1024
# O_DIRECT wants offsets and sizes on the device's logical block; 4096 covers every
# common one. The server aligns a body's start to it before handing the rest over, so
# both sides use this one.
BLOCK = 4096
# How often progress is told while bytes keep coming.
REPORT_SECONDS = 0.25

# Why a body ended before its end, in an outcome's "reason".
ENDED_EOF = "eof"
ENDED_IDLE = "idle"
ENDED_READ = "read"
ENDED_WRITE = "write"
ENDED_BROKEN = "broken"


class _Ended(Exception):
    def __init__(self, reason: str, at: int, error: OSError | None = None):
        super().__init__(reason)
        self.reason = reason
        self.at = at
        self.error = error


def _write_at(fd: int, view: memoryview, offset: int) -> None:
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


class _Job:
    """One body: file bytes `start`..`end` from the socket, the first `start` bytes read
    back from the file so that the digests cover the whole file."""

    def __init__(self, job: dict, fds: list[int], view: memoryview, tell):
        self.sock, self.cached, self.direct = fds
        self.start, self.end = job["start"], job["end"]
        self.idle_ms = job["idle_ms"]
        self.hashes = {name: hashlib.new(name) for name in job["algorithms"]}
        self.view = view
        self.tell = tell
        self.direct_ok = True

    def run(self) -> dict:
        self._hash_prefix()
        readable = select.poll()
        readable.register(self.sock, select.POLLIN)
        at = told = self.start
        told_at = time.monotonic()
        while at < self.end:
            want = min(len(self.view), self.end - at)
            filled = 0
            while filled < want:
                try:
                    got = os.readv(self.sock, [self.view[filled:want]])
                except BlockingIOError:
                    # Nothing more for now: what arrived shows before the wait.
                    if at + filled != told:
                        told, told_at = at + filled, time.monotonic()
                        self.tell({"progress": told})
                    if not readable.poll(self.idle_ms):
                        self._keep(filled, at, ENDED_IDLE)
                    continue
                except OSError as exc:
                    self._keep(filled, at, ENDED_READ, exc)
                if not got:
                    self._keep(filled, at, ENDED_EOF)
                filled += got
                now = time.monotonic()
                if now - told_at >= REPORT_SECONDS:
                    told, told_at = at + filled, now
                    self.tell({"progress": told})
            for digest in self.hashes.values():
                digest.update(self.view[:filled])
            self._write(self.view[:filled], at)
            at += filled
        return {"done": at, "digests": {n: h.hexdigest() for n, h in self.hashes.items()}}

    def _hash_prefix(self) -> None:
        at = 0
        while at < self.start:
            read = os.preadv(self.cached, [self.view[: min(len(self.view), self.start - at)]], at)
            if not read:
                raise _Ended(ENDED_READ, self.start, OSError(errno.EIO, "the file is short"))
            for digest in self.hashes.values():
                digest.update(self.view[:read])
            at += read

    def _write(self, view: memoryview, at: int) -> None:
        """Whole blocks past the page cache, a short rest (the body's end) through it."""
        whole = len(view) - len(view) % BLOCK
        try:
            if whole and self.direct_ok:
                try:
                    _write_at(self.direct, view[:whole], at)
                except OSError as exc:
                    # A file system that opened the file for direct writes but refuses them.
                    if exc.errno != errno.EINVAL:
                        raise
                    self.direct_ok = False
            if whole and not self.direct_ok:
                _write_at(self.cached, view[:whole], at)
            if whole < len(view):
                _write_at(self.cached, view[whole:], at + whole)
        except OSError as exc:
            raise _Ended(ENDED_WRITE, at, exc) from None

    def _keep(self, filled: int, at: int, reason: str, error: OSError | None = None) -> None:
        """The body ended early: write what arrived, so that a resume goes on from it."""
        try:
            _write_at(self.cached, self.view[:filled], at)
        except OSError as exc:
            raise _Ended(ENDED_WRITE, at, exc) from None
        raise _Ended(reason, at + filled, error)


def _outcome_of(ended: _Ended) -> dict:
    outcome: dict = {"ended": ended.at, "reason": ended.reason}
    if ended.error is not None:
        outcome["errno"] = ended.error.errno or 0
        outcome["message"] = ended.error.strerror or str(ended.error)
    return outcome


def serve(channel: socket.socket) -> None:
    """Move the bodies handed over `channel`, one after the other, until it closes; it
    is closed on return, so the server never waits on a channel nobody serves."""
    with channel:
        _serve(channel)


def _serve(channel: socket.socket) -> None:
    buffer = mmap.mmap(-1, BUFFER_SIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    view = memoryview(buffer)

    def tell(message: dict) -> None:
        channel.send(json.dumps(message).encode())

    while True:
        try:
            message, fds, _, _ = socket.recv_fds(channel, MESSAGE_SIZE, JOB_DESCRIPTORS)
        except OSError:
            return
        if not message:
            return
        try:
            if len(fds) != JOB_DESCRIPTORS:
                raise ValueError(f"a job came with {len(fds)} descriptors")
            outcome = _Job(json.loads(message), fds, view, tell).run()
        except _Ended as ended:
            outcome = _outcome_of(ended)
        except Exception as exc:  # told to the server, which fails the one download
            outcome = {"reason": ENDED_BROKEN, "message": repr(exc)}
        finally:
            for fd in fds:
                os.close(fd)
        try:
            tell(outcome)
        except OSError:
            return


def main(argv: list[str]) -> int:
    # A mover ends with the server that started it, when its channels close: a Ctrl-C
    # or a stop signal sent to the whole group must not cut off the bodies the
    # server is still winding down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    channels = [socket.socket(fileno=int(fd)) for fd in argv]
    threads = [
        threading.Thread(target=serve, args=(channel,), name="ferry-mover", daemon=True)
        for channel in channels
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
