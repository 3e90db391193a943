"""A body from the socket to the disk past the page cache (O_DIRECT).

Bytes written through the page cache cost a copy into it and leave the kernel to write
them out, which on some disks runs at a fraction of what the disk takes directly; the
final fsync then waits for all of it. Here the socket is read into page-aligned buffers
that are hashed and handed to the disk as they are: the bytes are copied once. Only
whole blocks go past the cache: the few bytes before the first block boundary and after
the last one are written through it as usual.

A body is moved by three threads at once, so that its network, hash and disk overlap
on different cores: the reader fills one buffer while the hashing thread hashes another
and a writer thread writes a third. But while at least as many downloads run as the
machine has cores, a body under LARGE_BODY is received, hashed and written in turn by
its own thread through one buffer: the downloads keep the cores busy between them, and
hand-overs between threads would cost more than they save.

The buffers of bodies under LARGE_BODY are lent from a pool that keeps them between
transfers (a big body maps its own: next to its bytes they cost little). Memory
written for the first time costs a page fault per page, and on a virtual machine whose
host takes back the memory its guest frees (free page reporting), a fault on the host
as well: page cache filled for every new file, or buffers mapped afresh for every
transfer, pay that on every download; buffers the process keeps pay it once.
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

from ferry.downloads import mover_process
from ferry.downloads.digests import FileDigest
from ferry.downloads.mover_process import BLOCK
from ferry.downloads.movers import MoverBroken
from ferry.downloads.part_files import local_error
from ferry.downloads.policy import NETWORK_ERROR, FetchError
from ferry.downloads.priority import yield_to_requests
from ferry.downloads.watchdog import Transfer, transfers_under_way

# A body with at least this much still to read goes past the page cache; below it the
# aligned head and tail are most of it (batches of 100 files of 256 KiB and 1 MiB took
# a quarter less time than with this at 1 MiB).
DIRECT_MIN_SIZE = 64 * 1024
# A body under LARGE_BODY moves through pooled buffers of BUFFER_SIZE, a bigger one
# through buffers of LARGE_BUFFER_SIZE of its own.
BUFFER_SIZE = 512 * 1024
LARGE_BUFFER_SIZE = 4 * 1024 * 1024
LARGE_BODY = 64 * 1024 * 1024
# Buffers of a body moved by three threads: one filling, one hashing, one or two writing.
BUFFERS = 4
# Downloads under way from which a body under LARGE_BODY is moved in turn.
CORES = os.cpu_count() or 1
# What the pool keeps for the next transfers: the buffers of 16 downloads at once.
POOL_BYTES = 16 * BUFFERS * BUFFER_SIZE
# Progress is reported after this much or this long, whichever comes first, so the
# idle timeout sees a slow trickle too.
REPORT_BYTES = 1024 * 1024
REPORT_SECONDS = 0.25
# A body goes to a mover only if the bytes before it, which the mover reads back to
# hash the whole file, are at most this many (a fresh download's first read).
MOVER_PREFIX_MAX = 4 * 1024 * 1024

ReadFailed = Callable[[BaseException, int], FetchError]


class BufferPool:
    """Page-aligned buffers lent to transfers and kept, up to `keep_bytes` in all, for
    the next ones. Thread-safe."""

    def __init__(self, keep_bytes: int):
        self._keep_bytes = keep_bytes
        self._kept: dict[int, list[mmap.mmap]] = {}
        self._kept_bytes = 0
        self._lock = threading.Lock()

    def lend(self, size: int) -> mmap.mmap:
        with self._lock:
            kept = self._kept.get(size)
            if kept:
                self._kept_bytes -= size
                return kept.pop()
        return new_buffer(size)

    def give_back(self, buffer: mmap.mmap) -> None:
        """Take back a buffer no thread reads or writes any more; one past the bound is
        left to be unmapped once the last view of it is gone."""
        size = len(buffer)
        with self._lock:
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


class _DirectFile:
    """Writes at offsets past the page cache; a file system that opened the file for
    direct writes but refuses them (EINVAL) gets them through the page cache instead."""

    def __init__(self, direct_fd: int, cached_fd: int):
        self._fd = direct_fd
        self._cached_fd = cached_fd

    def write(self, view: memoryview, offset: int) -> None:
        while view:
            try:
                written = os.pwrite(self._fd, view, offset)
            except OSError as exc:
                if exc.errno != errno.EINVAL or self._fd == self._cached_fd:
                    raise
                self._fd = self._cached_fd
                continue
            view, offset = view[written:], offset + written


class _Writer:
    """One thread writing filled buffers at their offsets, then handing each back to
    `free` with the file offset its bytes end at; a failure is kept for the reader,
    which stops at its next buffer."""

    def __init__(self, file: _DirectFile, free: queue.Queue):
        self._file = file
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
                    self._file.write(memoryview(buffer)[:size], offset)
                except OSError as exc:
                    self.error = exc
            self._free.put((buffer, end))


class _Body:
    """The rest of one body on its way from the socket into the file: what has arrived
    (`size` of `total`; body byte i goes to file offset `offset` + i), and what every
    read does (cancel, deadline and idle checks, progress)."""

    def __init__(
        self,
        sock: socket.socket,
        fd: int,
        transfer: Transfer,
        read_failed: ReadFailed,
        on_progress: Callable[[int], None] | None,
        *,
        offset: int,
        size: int,
        total: int,
    ):
        self._sock = sock
        self.fd = fd
        self._transfer = transfer
        self.read_failed = read_failed
        self._on_progress = on_progress
        self.idle_ms = int(transfer.policy.idle_timeout * 1000)
        self._readable = select.poll()
        self._readable.register(sock.fileno(), select.POLLIN)
        self.offset, self.size, self.total = offset, size, total
        self._reported, self._reported_at = size, time.monotonic()

    def _receive(self, view: memoryview) -> int:
        """Bytes into `view` from the socket, at least one; 0 at the end of the body."""
        while True:
            self._transfer.check()
            try:
                return self._sock.recv_into(view, len(view))
            except BlockingIOError:
                # Nothing more for now: what arrived shows before the wait.
                if self.size != self._reported:
                    self.report(force=True)
                if not self._readable.poll(self.idle_ms):
                    raise self.read_failed(TimeoutError("idle"), self.size) from None
            except OSError as exc:
                raise self.read_failed(exc, self.size) from None

    def fill(self, view: memoryview, until: float | None = None) -> int:
        """Fill `view` from the socket, short only at the end of the body or once the
        monotonic time `until` has passed; answers the bytes received. A read that fails
        (a pause, a stop) first writes what arrived through the page cache, so that a
        resume goes on from there."""
        filled = 0
        try:
            while filled < len(view):
                if until is not None and filled and time.monotonic() >= until:
                    break
                received = self._receive(view[filled:])
                if not received:
                    break
                filled += received
                self.size += received
                self.report()
        except FetchError:
            if filled:
                with contextlib.suppress(FetchError):
                    self.write_through_cache(view[:filled])
            raise
        return filled

    def moved_to(self, at: int) -> None:
        """Bytes up to file offset `at` are in the file."""
        self.size = at - self.offset
        self.report()

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if (
            force
            or self.size - self._reported >= REPORT_BYTES
            or now - self._reported_at >= REPORT_SECONDS
        ):
            self._reported, self._reported_at = self.size, now
            if self._on_progress is not None:
                self._on_progress(self.size)

    def write_through_cache(self, data: memoryview) -> None:
        """Write `data`, the body's last received bytes, through the page cache."""
        at = self.offset + self.size - len(data)
        try:
            while data:
                written = os.pwrite(self.fd, data, at)
                data, at = data[written:], at + written
        except OSError as exc:
            raise local_error(exc, "write the file") from None

    def head(self, digest: FileDigest, in_turn: bool) -> bool:
        """The bytes up to the first block boundary, through the page cache (hashed
        here when `in_turn`); False when the body ended before them."""
        head = min(-(self.offset + self.size) % BLOCK, self.total - self.size)
        if not head:
            return True
        piece = memoryview(bytearray(head))
        got = self.fill(piece)
        if got:
            self.write_through_cache(piece[:got])
            at = self.offset + self.size - got
            if in_turn:
                digest.hash_now(at, piece[:got])
            else:
                digest.wrote(at, got, bytes(piece[:got]))
            self.report(force=True)
        return got == head

    def more(self, until: float | None) -> int:
        """The bytes still to come; 0 once the body is complete or the monotonic time
        `until` has passed."""
        if self.size >= self.total or (until is not None and time.monotonic() >= until):
            return 0
        return self.total - self.size


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
    through it. Past the monotonic time `until`, it stops after the read at hand."""
    body = _Body(
        sock, fd, transfer, read_failed, on_progress, offset=offset, size=size, total=total
    )
    in_turn = moved_in_turn(total - size)
    # A socket with a timeout waits for data inside recv, whatever the flags; without
    # one, a read that would wait returns at once, and the wait is the body's own.
    timeout = sock.gettimeout()
    sock.settimeout(0)
    try:
        if body.head(digest, in_turn):
            file = _DirectFile(direct_fd, fd)
            if not in_turn:
                _pipelined(body, file, digest, transfer.cancel, until)
            elif until is not None or not _moved_elsewhere(body, sock, direct_fd, digest, transfer):
                _in_turn(body, file, digest, until)
    finally:
        with contextlib.suppress(OSError):  # closed under the read: nothing to restore
            sock.settimeout(timeout)
    body.report(force=True)
    return body.size


def _write(file: _DirectFile, body: _Body, view: memoryview, start: int) -> bool:
    """Write `view`, the bytes at file offset `start`: its whole blocks past the page
    cache, a short rest through it. False when there was such a rest (the body's
    end: nothing may follow it past the cache)."""
    whole = len(view) - len(view) % BLOCK
    if whole:
        try:
            file.write(view[:whole], start)
        except OSError as exc:
            raise local_error(exc, "write the file") from None
    if whole < len(view):
        body.write_through_cache(view[whole:])
        return False
    return True


def _in_turn(body: _Body, file: _DirectFile, digest: FileDigest, until: float | None) -> None:
    """Receive, hash and write one buffer after the other in the calling thread, for a
    body among enough other downloads to keep the cores busy: no hand-over between
    threads costs a wake-up or a turn at the interpreter."""
    buffer = _POOL.lend(BUFFER_SIZE)
    view = memoryview(buffer)
    try:
        while want := min(body.more(until), BUFFER_SIZE):
            filled = body.fill(view[:want], until)
            if not filled:
                break
            start = body.offset + body.size - filled
            digest.hash_now(start, view[:filled])
            if not _write(file, body, view[:filled], start) or filled < want:
                break
    finally:
        # Hashed in this thread: nothing else reads the buffer once this returns.
        _POOL.give_back(buffer)


def _moved_elsewhere(
    body: _Body, sock: socket.socket, direct_fd: int, digest: FileDigest, transfer: Transfer
) -> bool:
    """Hand the rest of the body to a mover, if one is free; False when none took it
    (nothing was read). The mover reads back the bytes before it, so that the digests
    it answers cover the whole file."""
    movers = transfer.tuning.movers
    start = body.offset + body.size
    if movers is None or start > MOVER_PREFIX_MAX or not digest.hand_over(start):
        return False
    job = {
        "start": start,
        "end": body.offset + body.total,
        "idle_ms": body.idle_ms,
        "algorithms": digest.algorithms,
    }
    try:
        outcome = movers.try_move(job, [sock.fileno(), body.fd, direct_fd], body.moved_to)
    except MoverBroken as exc:
        raise FetchError(NETWORK_ERROR, str(exc), transient=True) from None
    if outcome is None:
        return False
    if "done" in outcome:
        body.moved_to(outcome["done"])
        digest.adopt(outcome["done"], outcome["digests"])
        return True
    if "ended" in outcome:
        body.moved_to(outcome["ended"])
    reason = outcome["reason"]
    error = OSError(outcome.get("errno", 0), outcome.get("message", reason))
    if reason == mover_process.ENDED_EOF:
        return True  # a short body: the caller tells why it ended
    if reason == mover_process.ENDED_IDLE:
        raise body.read_failed(TimeoutError("idle"), body.size)
    if reason == mover_process.ENDED_READ:
        raise body.read_failed(error, body.size)
    if reason == mover_process.ENDED_WRITE:
        raise local_error(error, "write the file")
    raise FetchError(NETWORK_ERROR, f"the body mover failed: {error.strerror}", transient=True)


def _pipelined(
    body: _Body,
    file: _DirectFile,
    digest: FileDigest,
    cancel: threading.Event,
    until: float | None,
) -> None:
    """Fill one buffer while the hashing thread hashes another and a writer thread
    writes a third, so that the network, the hash and the disk of one body overlap on
    different cores."""
    pooled = body.total - body.size < LARGE_BODY
    buffer_size = BUFFER_SIZE if pooled else LARGE_BUFFER_SIZE
    if pooled:
        lent = [_POOL.lend(buffer_size) for _ in range(BUFFERS)]
    else:
        lent = [new_buffer(buffer_size) for _ in range(BUFFERS)]
    # Each free buffer with the file offset its last bytes ended at: refilled only once
    # hashed up to there.
    free: queue.Queue = queue.Queue()
    for buffer in lent:
        free.put((buffer, 0))
    with _Writer(file, free) as writer:
        while want := min(body.more(until), buffer_size):
            buffer, last_end = free.get()
            digest.wait_hashed(last_end, cancel)
            if writer.error is not None:
                raise local_error(writer.error, "write the file")
            view = memoryview(buffer)
            filled = body.fill(view[:want], until)
            if not filled:
                break
            start = body.offset + body.size - filled
            whole = filled - filled % BLOCK
            digest.holding(start, view[:filled])
            if whole:
                writer.write(buffer, whole, start, start + filled)
            else:
                free.put((buffer, start + filled))
            if whole < filled:
                # The body's last bytes, short of a block: through the page cache.
                body.write_through_cache(view[whole:filled])
                break
            if filled < want:
                break
    if writer.error is not None:
        raise local_error(writer.error, "write the file")
    # Lent again only once hashed: a transfer cut short drops its buffers instead, as
    # the hashing thread may still be reading them.
    if pooled and digest.wait_hashed(body.offset + body.size, cancel):
        for buffer in lent:
            _POOL.give_back(buffer)


def moved_in_turn(remaining: int | None) -> bool:
    """Whether a body with `remaining` bytes to go (None: not known) is received, hashed
    and written in turn by one thread rather than by three at once."""
    return remaining is not None and remaining < LARGE_BODY and transfers_under_way() >= CORES


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
