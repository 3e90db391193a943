"""A body from the socket to the disk past the page cache (O_DIRECT).

Bytes written through the page cache cost a copy into it and leave the kernel to write
them out, which on some disks runs at a fraction of what the disk takes directly; the
final fsync then waits for all of it. Here the socket is read into page-aligned buffers,
the hashing thread hashes each buffer while a writer thread hands it to the disk as
it is, and the reader fills the next: network, hashing and disk overlap, and the bytes
are copied once. Only whole blocks go past the cache: the few bytes before the first
block boundary and after the last one are written through it as usual.

The buffers are lent from a pool that keeps them between transfers. Memory written for
the first time costs a page fault per page, and on a virtual machine whose host takes
back the memory its guest frees (free page reporting), a fault on the host as well:
page cache filled for every new file, or buffers mapped afresh for every transfer, pay
that on every download; buffers the process keeps pay it once. (A big body maps its own
few buffers: next to its bytes they cost nothing, and kept they would hold memory for
nothing between big downloads.)
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import queue
import select
import socket
import threading
import time
from collections.abc import Callable

from ferry.downloads.digests import FileDigest
from ferry.downloads.part_files import local_error
from ferry.downloads.policy import FetchError
from ferry.downloads.priority import yield_to_requests
from ferry.downloads.watchdog import Transfer

# A body with at least this much still to read goes past the page cache; below it the
# threads cost more than the cache does (measured on batches of 100 files of 256 KiB,
# 1 MiB and 5 MiB).
DIRECT_MIN_SIZE = 1024 * 1024
# O_DIRECT wants offsets and sizes on the device's logical block; 4096 covers every
# common one.
BLOCK = 4096
# A body under LARGE_BODY is moved through pooled buffers of BUFFER_SIZE, so that many
# downloads at once hold little memory and map none afresh; a bigger one through
# buffers of LARGE_BUFFER_SIZE of its own (fewer hand-overs; mapping them costs little
# next to the body).
BUFFER_SIZE = 512 * 1024
LARGE_BUFFER_SIZE = 4 * 1024 * 1024
LARGE_BODY = 64 * 1024 * 1024
# Buffers in flight per transfer: one filling, one hashing, one or two writing.
BUFFERS = 4
# What the pool keeps for the next transfers: the buffers of 16 downloads at once.
POOL_BYTES = 16 * BUFFERS * BUFFER_SIZE
# Progress is reported after this much or this long, whichever comes first, so the
# idle timeout sees a slow trickle too.
REPORT_BYTES = 1024 * 1024
REPORT_SECONDS = 0.25

ReadFailed = Callable[[BaseException, int], FetchError]


class BufferPool:
    """Page-aligned buffers lent to transfers and kept, up to `keep_bytes` in all, for
    the next ones. Thread-safe."""

    def __init__(self, keep_bytes: int):
        self._keep_bytes = keep_bytes
        self._kept: dict[int, list[mmap.mmap]] = {}
        self._kept_bytes = 0
        self._lock = threading.Lock()

    def lend(self, count: int, size: int) -> list[mmap.mmap]:
        lent = []
        with self._lock:
            kept = self._kept.get(size, [])
            while kept and len(lent) < count:
                lent.append(kept.pop())
                self._kept_bytes -= size
        while len(lent) < count:
            lent.append(new_buffer(size))
        return lent

    def give_back(self, buffers: list[mmap.mmap]) -> None:
        """Take back buffers no thread reads or writes any more; those past the bound
        are left to be unmapped once the last view of them is gone."""
        with self._lock:
            for buffer in buffers:
                size = len(buffer)
                if self._kept_bytes + size <= self._keep_bytes:
                    self._kept.setdefault(size, []).append(buffer)
                    self._kept_bytes += size

    @property
    def kept_bytes(self) -> int:
        with self._lock:
            return self._kept_bytes


def new_buffer(size: int) -> mmap.mmap:
    """`size` bytes of private memory on a page boundary, as O_DIRECT needs them."""
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)


_POOL = BufferPool(POOL_BYTES)


def open_direct(fd: int) -> int | None:
    """A second descriptor on the file open as `fd` that writes past the page cache,
    or None where the system or file system has no such thing (tmpfs, macOS)."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | flag | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None


class _Writer:
    """One thread writing filled buffers at their offsets, then handing each back to
    `free` with the file offset its bytes end at; a failure is kept for the reader,
    which stops at its next buffer. A file system that opened the file for
    direct writes but refuses them (EINVAL) gets them through the page cache instead."""

    def __init__(self, direct_fd: int, cached_fd: int, free: queue.Queue):
        self._fd = direct_fd
        self._cached_fd = cached_fd
        self._free = free
        self._work: queue.Queue = queue.Queue()
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="ferry-fetch-direct", daemon=True)

    def __enter__(self) -> _Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._work.put(None)
        self._thread.join()

    def write(self, buffer: mmap.mmap, size: int, offset: int, end: int) -> None:
        self._work.put((buffer, size, offset, end))

    def _run(self) -> None:
        yield_to_requests()
        while (item := self._work.get()) is not None:
            buffer, size, offset, end = item
            if self.error is None:
                try:
                    self._write(memoryview(buffer)[:size], offset)
                except OSError as exc:
                    self.error = exc
            self._free.put((buffer, end))

    def _write(self, view: memoryview, offset: int) -> None:
        while view:
            try:
                written = os.pwrite(self._fd, view, offset)
            except OSError as exc:
                if exc.errno != errno.EINVAL or self._fd == self._cached_fd:
                    raise
                self._fd = self._cached_fd
                continue
            view, offset = view[written:], offset + written


def direct_rest(
    sock: socket.socket,
    fd: int,
    direct_fd: int,
    transfer: Transfer,
    read_failed: ReadFailed,
    on_progress: Callable[[int], None] | None,
    digest: FileDigest,
    *,
    offset: int,
    size: int,
    total: int,
    until: float | None = None,
) -> int:
    """Move body bytes `size`..`total` from `sock` into the file (body byte i at
    `offset` + i), returning the bytes now written; the same checks as reading (cancel,
    deadline, idle timeout, progress). `direct_fd` writes past the page cache, `fd`
    through it. Past the monotonic time `until`, it stops after the buffer at hand."""
    idle_ms = int(transfer.policy.idle_timeout * 1000)
    readable = select.poll()
    readable.register(sock.fileno(), select.POLLIN)
    reported, reported_at = size, time.monotonic()

    def receive(view: memoryview) -> int:
        """Bytes into `view` from the socket, at least one; 0 at the end of the body."""
        while True:
            transfer.check()
            try:
                return sock.recv_into(view, len(view), socket.MSG_DONTWAIT)
            except BlockingIOError:
                if not readable.poll(idle_ms):
                    raise read_failed(TimeoutError("idle"), size) from None
            except OSError as exc:
                raise read_failed(exc, size) from None

    def report(force: bool = False) -> None:
        nonlocal reported, reported_at
        now = time.monotonic()
        if force or size - reported >= REPORT_BYTES or now - reported_at >= REPORT_SECONDS:
            reported, reported_at = size, now
            if on_progress is not None:
                on_progress(size)

    def write_through_cache(data: memoryview) -> None:
        at = offset + size - len(data)
        try:
            while data:
                written = os.pwrite(fd, data, at)
                data, at = data[written:], at + written
        except OSError as exc:
            raise local_error(exc, "write the file") from None

    # Up to the first block boundary through the page cache.
    head = min(-(offset + size) % BLOCK, total - size)
    if head:
        piece = bytearray(head)
        got = 0
        while got < head:
            received = receive(memoryview(piece)[got:])
            if not received:
                return size
            got += received
        size += head
        write_through_cache(memoryview(piece))
        digest.wrote(offset + size - head, head, bytes(piece))
        report(force=True)

    # Each free buffer with the file offset its last bytes ended at: refilled only once
    # hashed up to there.
    pooled = total - size < LARGE_BODY
    buffer_size = BUFFER_SIZE if pooled else LARGE_BUFFER_SIZE
    lent = (
        _POOL.lend(BUFFERS, buffer_size)
        if pooled
        else [new_buffer(buffer_size) for _ in range(BUFFERS)]
    )
    free: queue.Queue = queue.Queue()
    for buffer in lent:
        free.put((buffer, 0))
    with _Writer(direct_fd, fd, free) as writer:
        while size < total and (until is None or time.monotonic() < until):
            buffer, last_end = free.get()
            digest.wait_hashed(last_end, transfer.cancel)
            if writer.error is not None:
                raise local_error(writer.error, "write the file")
            view = memoryview(buffer)
            filled = 0
            want = min(buffer_size, total - size)
            try:
                while filled < want:
                    received = receive(view[filled:want])
                    if not received:
                        break
                    filled += received
                    size += received
                    report()
            except FetchError:
                # A pause or a stop keeps the part file for a resume: keep what arrived.
                if filled:
                    with contextlib.suppress(FetchError):
                        write_through_cache(view[:filled])
                raise
            if not filled:
                free.put((buffer, last_end))
                break
            start = offset + size - filled
            whole = filled - filled % BLOCK
            digest.holding(start, view[:filled])
            if whole:
                writer.write(buffer, whole, start, start + filled)
            else:
                free.put((buffer, start + filled))
            if whole < filled:
                # The body's last bytes, short of a block: through the page cache.
                write_through_cache(view[whole:filled])
                break
            if filled < want:
                break
    if writer.error is not None:
        raise local_error(writer.error, "write the file")
    # Lent again only once hashed: a transfer cut short drops its buffers instead, as
    # the hashing thread may still be reading them.
    if pooled and digest.wait_hashed(offset + size, transfer.cancel):
        _POOL.give_back(lent)
    report(force=True)
    return size


def usable(transfer: Transfer, remaining: int) -> bool:
    """Whether a body with `remaining` bytes to go is worth the direct path: big
    enough, and no shared rate limit (the other paths hold each read back to it; a
    whole buffer at once would burst past it)."""
    return remaining >= DIRECT_MIN_SIZE and transfer.tuning.bandwidth is None


@contextlib.contextmanager
def direct_descriptor(fd: int):
    """`open_direct(fd)`, closed on leaving."""
    direct_fd = open_direct(fd)
    try:
        yield direct_fd
    finally:
        if direct_fd is not None:
            os.close(direct_fd)
