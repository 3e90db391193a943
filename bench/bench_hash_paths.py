"""Which way of hashing a body while it is written costs least: the body comes from a
local sendfile server (its own process) and goes into a file, hashed with sha256 on a
second thread, in one of four ways.

    python bench/bench_hash_paths.py [--size-mib 1024] [--rounds 3]

- splice, no hash: socket -> pipe -> file inside the kernel (the floor);
- splice, read back: the same, and the hashing thread reads each spliced piece back
  from the page cache it was just written to (what Ferry does);
- recv + pwrite: each piece received into a fresh buffer, written from it, and hashed
  from it;
- splice + tee: the pipe is duplicated with tee(2) into a second pipe, which is read
  and hashed.

Reports wall time and this process's CPU time (user + system) per way, medians of the
rounds; on a shared machine the CPU time is the steadier measure. Linux only.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import fcntl
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PIECE = 1024 * 1024
F_SETPIPE_SZ = 1031
SERVER = """
import socket, sys
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
while True:
    connection, _ = listener.accept()
    connection.recv(16)
    with open(sys.argv[1], "rb") as body:
        connection.sendfile(body)
    connection.close()
"""

_libc = ctypes.CDLL(None, use_errno=True)
_libc.tee.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint]
_libc.tee.restype = ctypes.c_ssize_t


def tee(source: int, target: int, size: int) -> int:
    copied = _libc.tee(source, target, size, 0)
    if copied < 0:
        raise OSError(ctypes.get_errno(), "tee")
    return copied


class Hasher:
    """A thread hashing, in order, buffers or (offset, size) pieces to read back."""

    def __init__(self, fd: int):
        self.fd = fd
        self.sha256 = hashlib.sha256()
        self.pieces: collections.deque = collections.deque()
        self.changed = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def put(self, piece) -> None:
        with self.changed:
            self.pieces.append(piece)
            self.changed.notify()

    def close(self) -> str:
        with self.changed:
            self.closed = True
            self.changed.notify()
        self.thread.join()
        return self.sha256.hexdigest()

    def run(self) -> None:
        view = memoryview(bytearray(PIECE))
        while True:
            with self.changed:
                while not self.pieces and not self.closed:
                    self.changed.wait()
                if not self.pieces:
                    return
                piece = self.pieces.popleft()
            if not isinstance(piece, tuple):
                self.sha256.update(piece)
                continue
            offset, size = piece
            while size:
                read = os.preadv(self.fd, [view[: min(PIECE, size)]], offset)
                self.sha256.update(view[:read])
                offset, size = offset + read, size - read


def pipe() -> tuple[int, int]:
    out, into = os.pipe()
    fcntl.fcntl(into, F_SETPIPE_SZ, PIECE)
    return out, into


def splice_all(sock: socket.socket, fd: int, size: int, hasher: Hasher | None, teed: bool) -> None:
    out, into = pipe()
    copy_out, copy_in = pipe()
    offset = 0
    while offset < size:
        moved = os.splice(sock.fileno(), into, PIECE)
        if not moved:
            break
        if teed:
            duplicated = 0
            while duplicated < moved:
                duplicated += tee(out, copy_in, moved - duplicated)
        left = moved
        while left:
            left -= os.splice(out, fd, left, offset_dst=offset + moved - left)
        if teed:
            got = 0
            while got < moved:
                piece = os.read(copy_out, moved - got)
                hasher.put(piece)
                got += len(piece)
        elif hasher is not None:
            hasher.put((offset, moved))
        offset += moved
    for end in (out, into, copy_out, copy_in):
        os.close(end)


def receive_all(sock: socket.socket, fd: int, size: int, hasher: Hasher) -> None:
    offset = 0
    while offset < size:
        piece = sock.recv(PIECE)
        if not piece:
            break
        os.pwrite(fd, piece, offset)
        hasher.put(piece)
        offset += len(piece)


def run_way(way: str, port: int, target: Path, size: int) -> str | None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"go")
        fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            hasher = None if way == "splice, no hash" else Hasher(fd)
            if way == "recv + pwrite":
                receive_all(sock, fd, size, hasher)
            else:
                splice_all(sock, fd, size, hasher, teed=way == "splice + tee")
            return hasher.close() if hasher is not None else None
        finally:
            os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    size = args.size_mib << 20
    ways = ["splice, no hash", "splice, read back", "recv + pwrite", "splice + tee"]
    with tempfile.TemporaryDirectory(prefix="ferry-hash-paths-") as work:
        source, target = Path(work) / "source.bin", Path(work) / "target.bin"
        with source.open("wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(PIECE))
        expected = hashlib.sha256(source.read_bytes()).hexdigest()
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(source)], stdout=subprocess.PIPE, text=True
        )
        try:
            port = int(server.stdout.readline())
            times: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
            for _ in range(args.rounds):
                for way in ways:
                    os.sync()
                    cpu, began = os.times(), time.perf_counter()
                    digest = run_way(way, port, target, size)
                    wall, spent = time.perf_counter() - began, os.times()
                    if digest not in (None, expected):
                        raise RuntimeError(f"{way} hashed {digest}, not {expected}")
                    used = spent.user - cpu.user + spent.system - cpu.system
                    times[way].append((wall, used))
        finally:
            server.kill()
            server.wait()
    print(f"{args.size_mib} MiB, medians of {args.rounds} rounds, {os.cpu_count()} CPUs")
    for way in ways:
        wall = statistics.median(w for w, _ in times[way])
        used = statistics.median(c for _, c in times[way])
        print(f"  {way:<20} wall {wall:6.2f} s   CPU {used:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
