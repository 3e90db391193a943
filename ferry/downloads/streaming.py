"""Moving a body into the part file: read by read, spliced in the kernel where the
socket allows, or in segments over several connections at once; each way capped,
cancelled and timed like the others."""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import io
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable

import urllib3
from urllib3.response import BaseHTTPResponse

from ferry.downloads import direct_io
from ferry.downloads.digests import FileDigest
from ferry.downloads.fetch_types import SEGMENTS
from ferry.downloads.part_files import Writeback, local_error
from ferry.downloads.policy import FILE_TOO_LARGE, NETWORK_ERROR, CheckedUrl, FetchError
from ferry.downloads.priority import yield_to_requests
from ferry.downloads.ranges import can_segment, open_ranges, segments
from ferry.downloads.urllib3_vetted import VettedPoolManager
from ferry.downloads.watchdog import Transfer

# Large reads keep per-chunk overhead (callbacks, syscalls) far below the transfer cost.
CHUNK_SIZE = 512 * 1024
# A plain-HTTP body of known length goes from the socket to the file through a pipe of
# this size inside the kernel (splice): no copy through Python, the GIL released.
SPLICE_PIPE_SIZE = 1024 * 1024
# A reader held back by the bandwidth limit looks at cancel and the deadline this often.
THROTTLE_CHECK_SECONDS = 0.25


def _write_all(fd: int, chunk: bytes, offset: int) -> None:
    view = memoryview(chunk)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _read_failed(
    transfer: Transfer, exc: BaseException, target: CheckedUrl, size: int, announced: int | None
) -> FetchError:
    error = transfer.explain(exc, target.host)
    if error.code == NETWORK_ERROR:
        expected = f" of {announced}" if announced is not None else ""
        error = FetchError(
            NETWORK_ERROR,
            f"connection to {target.host} broke after {size}{expected} bytes",
            transient=True,
        )
    return error


def refuse_announced_size(length: int | None, max_size: int | None) -> None:
    """Refuse, before any body byte, a file whose stated size is over the cap."""
    if max_size is not None and length is not None and length > max_size:
        raise FetchError(
            FILE_TOO_LARGE, f"the file is {length} bytes, over the limit of {max_size} bytes"
        )


def _too_large(size: int, max_size: int | None) -> None:
    if max_size is not None and size > max_size:
        raise FetchError(FILE_TOO_LARGE, f"the file is larger than the limit of {max_size} bytes")


def _spliceable_socket(response: BaseHTTPResponse) -> socket.socket | None:
    """The plain TCP socket under a length-delimited body, if the rest can be spliced.

    Call only after a read of at least io.DEFAULT_BUFFER_SIZE: that read took what the
    header parser had buffered, so every remaining body byte is still in the socket.
    """
    if not hasattr(os, "splice"):
        return None
    original = getattr(response, "_fp", None)  # the http.client response
    if not isinstance(original, http.client.HTTPResponse) or original.chunked:
        return None
    sock = getattr(getattr(original.fp, "raw", None), "_sock", None)
    if not isinstance(sock, socket.socket) or isinstance(sock, ssl.SSLSocket):
        return None
    return sock


def _throttle(transfer: Transfer, received: int) -> None:
    """Hold the reader until `received` bytes fit the shared rate; cancel and the
    deadline end the wait."""
    bandwidth = transfer.tuning.bandwidth
    if bandwidth is None:
        return
    resume_at = time.monotonic() + bandwidth.take(received)
    while (left := resume_at - time.monotonic()) > 0:
        transfer.cancel.wait(min(left, THROTTLE_CHECK_SECONDS))
        transfer.check()


def _splice_rest(
    sock: socket.socket,
    fd: int,
    transfer: Transfer,
    target: CheckedUrl,
    announced: int | None,
    on_progress: Callable[[int], None] | None,
    writeback: Writeback,
    digest: FileDigest,
    *,
    offset: int,
    size: int,
    total: int,
    until: float | None = None,
) -> int:
    """Move body bytes `size`..`total` from `sock` to `fd` (at `offset` + position),
    stopping early once the monotonic clock passes `until`.

    Same checks as reading: cancel and deadline (the watchdog's shutdown ends a wait
    as end of body), idle timeout, size cap, progress; returns the bytes now written.
    The bytes never reach Python: `digest` reads them back from the page cache, where
    they were written a moment before.
    """
    max_size = transfer.policy.max_size
    idle_ms = int(transfer.policy.idle_timeout * 1000)
    source = sock.fileno()
    readable = select.poll()
    readable.register(source, select.POLLIN)
    pipe_out, pipe_in = os.pipe()
    try:
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(pipe_in, fcntl.F_SETPIPE_SZ, SPLICE_PIPE_SIZE)
        while size < total and (until is None or time.monotonic() < until):
            transfer.check()
            want = min(SPLICE_PIPE_SIZE, total - size)
            try:
                moved = os.splice(
                    source, pipe_in, want, flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
                )
            except BlockingIOError:
                if not readable.poll(idle_ms):
                    raise _read_failed(
                        transfer, TimeoutError("idle"), target, size, announced
                    ) from None
                continue
            except OSError as exc:
                raise _read_failed(transfer, exc, target, size, announced) from None
            if not moved:
                break
            size += moved
            received = moved
            _too_large(size, max_size)
            while moved:
                try:
                    moved -= os.splice(pipe_out, fd, moved, offset_dst=offset + size - moved)
                except OSError as exc:
                    raise local_error(exc, "write the file") from None
            digest.wrote(offset + size - received, received)
            writeback.written(size)
            if on_progress is not None:
                on_progress(size)
            _throttle(transfer, received)
    finally:
        os.close(pipe_out)
        os.close(pipe_in)
    return size


def _move_rest(
    sock: socket.socket,
    fd: int,
    transfer: Transfer,
    target: CheckedUrl,
    announced: int | None,
    on_progress: Callable[[int], None] | None,
    writeback: Writeback,
    digest: FileDigest,
    *,
    direct: bool,
    offset: int,
    size: int,
    total: int,
    until: float | None,
) -> int:
    """Body bytes `size`..`total`, all still in `sock`, as `_splice_rest` moves them:
    past the page cache instead when `direct` allows, the rest is big enough and the
    file system takes it."""
    window = {"offset": offset, "size": size, "total": total, "until": until}
    if direct and direct_io.usable(transfer, total - size):
        with direct_io.direct_descriptor(fd) as direct_fd:
            if direct_fd is not None:
                return direct_io.direct_rest(
                    sock,
                    fd,
                    direct_fd,
                    transfer,
                    lambda exc, at: _read_failed(transfer, exc, target, at, announced),
                    on_progress,
                    digest,
                    **window,
                )
    return _splice_rest(
        sock, fd, transfer, target, announced, on_progress, writeback, digest, **window
    )


def _stream_body(
    response: BaseHTTPResponse,
    fd: int,
    transfer: Transfer,
    target: CheckedUrl,
    announced: int | None,
    on_progress: Callable[[int], None] | None,
    digest: FileDigest,
    *,
    offset: int = 0,
    limit: int | None = None,
    until: float | None = None,
    direct: bool = False,
) -> int:
    """Write the body at `offset` in `fd`, stopping after `limit` bytes if given, and
    hand each piece written to `digest`. With `direct`, a big rest of a body read in
    order goes past the page cache (see `direct_io`).

    With `until`, a monotonic time, the read also stops once that time has passed and
    answers the bytes written so far; the rest of the body stays in the response for
    another call to read on from there (with `offset` moved past what was written)."""
    max_size = transfer.policy.max_size
    # read1 returns what has arrived instead of waiting for a full chunk (urllib3 >= 2.3).
    read = getattr(response, "read1", response.read)
    # A smaller body read in order is hashed by the thread that reads it, as
    # `direct_io` moves its rest: no hashing thread to start and hand bytes to.
    hash_here = direct and direct_io.moved_in_turn(announced)
    total = limit if limit is not None else announced
    size = 0
    writeback = Writeback(fd, offset, transfer.tuning.writeback_window)
    while limit is None or size < limit:
        if until is not None and time.monotonic() >= until:
            return size
        transfer.check()
        want = CHUNK_SIZE if limit is None else min(CHUNK_SIZE, limit - size)
        try:
            chunk = read(want, decode_content=False)
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise _read_failed(transfer, exc, target, size, announced) from None
        if not chunk:
            break
        size += len(chunk)
        _too_large(size, max_size)
        try:
            _write_all(fd, chunk, offset + size - len(chunk))
        except OSError as exc:
            raise local_error(exc, "write the file") from None
        if hash_here:
            digest.hash_now(offset + size - len(chunk), chunk)
        else:
            digest.wrote(offset + size - len(chunk), len(chunk), chunk)
        writeback.written(size)
        if on_progress is not None:
            on_progress(size)
        _throttle(transfer, len(chunk))
        if total is not None and size < total and want >= io.DEFAULT_BUFFER_SIZE:
            sock = _spliceable_socket(response)
            if sock is not None:
                size = _move_rest(
                    sock,
                    fd,
                    transfer,
                    target,
                    announced,
                    on_progress,
                    writeback,
                    digest,
                    direct=direct,
                    offset=offset,
                    size=size,
                    total=total,
                    until=until,
                )
                if size < total and until is not None and time.monotonic() >= until:
                    return size
                break
    # A shut-down socket reads as a clean end of body; the watchdog knows better.
    transfer.check()
    if announced is not None and size < announced:
        raise FetchError(
            NETWORK_ERROR,
            f"connection to {target.host} closed after {size} of {announced} bytes",
            transient=True,
        )
    return size


def stream(
    connections: VettedPoolManager,
    response: BaseHTTPResponse,
    fd: int,
    transfer: Transfer,
    target: CheckedUrl,
    length: int | None,
    on_progress: Callable[[int], None] | None,
    digest: FileDigest,
    on_in_order: Callable[[], None] | None = None,
) -> int:
    """The body into `fd`: over one connection, or in segments when the server allows
    and one connection proves slow. `on_in_order` is called when a body that could have
    been segmented is read on in order over its one connection instead.

    A file big enough to segment is first read over its one connection for
    `segment_probe_seconds`: a connection that delivers at least `segment_below_rate`
    (or the whole first segment in that time) reads on alone, since more connections
    to a fast source add work without adding speed. Otherwise the first connection
    reads on to the end of the first segment while the others fetch the rest.

    Segments go through the same connections, so every extra connection is vetted like the
    first, and share the transfer, so cancel and the deadline end them all. If any other
    range is refused, the fetch goes on over that one connection alone.
    """
    tuning = transfer.tuning
    if not can_segment(response, length, tuning):
        return _stream_body(
            response, fd, transfer, target, length, on_progress, digest, direct=True
        )
    assert length is not None
    pieces = segments(length, SEGMENTS, tuning.segment_alignment)
    first_size = pieces[0][1]
    probed = 0
    if tuning.segment_probe_seconds > 0:
        began = time.monotonic()
        probed = _stream_body(
            response,
            fd,
            transfer,
            target,
            first_size,
            on_progress,
            digest,
            limit=first_size,
            until=began + tuning.segment_probe_seconds,
            direct=True,
        )
        rate = probed / max(time.monotonic() - began, 1e-6)
        if probed >= first_size or rate >= tuning.segment_below_rate:
            if on_in_order is not None:
                on_in_order()
            return probed + _read_on_alone(
                response, fd, transfer, target, length, on_progress, digest, probed
            )
    with contextlib.ExitStack() as closing:
        extra = open_ranges(connections, transfer, target, pieces[1:], closing)
        if extra is None:
            if on_in_order is not None:
                on_in_order()
            return probed + _read_on_alone(
                response, fd, transfer, target, length, on_progress, digest, probed
            )
        return stream_segments(
            [response, *extra],
            [(probed, first_size - probed), *pieces[1:]],
            fd,
            transfer,
            target,
            length,
            on_progress,
            digest,
            already=probed,
        )


def _read_on_alone(
    response: BaseHTTPResponse,
    fd: int,
    transfer: Transfer,
    target: CheckedUrl,
    length: int,
    on_progress: Callable[[int], None] | None,
    digest: FileDigest,
    done: int,
) -> int:
    """The rest of a body of `length` bytes whose first `done` are written: the bytes
    written now."""
    if done >= length:
        return 0
    progress = None if on_progress is None else (lambda size: on_progress(done + size))
    return _stream_body(
        response,
        fd,
        transfer,
        target,
        length - done,
        progress,
        digest,
        offset=done,
        limit=length - done,
        direct=True,
    )


def stream_segments(
    responses: list[BaseHTTPResponse],
    pieces: list[tuple[int, int]],
    fd: int,
    transfer: Transfer,
    target: CheckedUrl,
    length: int,
    on_progress: Callable[[int], None] | None,
    digest: FileDigest,
    *,
    already: int = 0,
) -> int:
    """Each of `pieces` (start, size) of `fd` from its response, at once; `digest` takes
    the first piece as it arrives and reads the others back as its prefix reaches them.
    `already` bytes outside the pieces are written and count toward progress."""
    done = [0] * len(pieces)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run(index: int) -> None:
        yield_to_requests()

        def progress(size: int) -> None:
            with lock:
                done[index] = size
                if on_progress is not None:
                    on_progress(already + sum(done))

        start, size = pieces[index]
        try:
            got = _stream_body(
                responses[index],
                fd,
                transfer,
                target,
                size,
                progress,
                digest,
                offset=start,
                limit=size,
            )
            if got != size:
                raise FetchError(
                    NETWORK_ERROR,
                    f"connection to {target.host} closed after {got} of {size} bytes",
                    transient=True,
                )
        except BaseException as exc:
            with lock:
                errors.append(exc)
            transfer.fail(
                exc if isinstance(exc, FetchError) else FetchError(NETWORK_ERROR, str(exc))
            )

    workers = [
        threading.Thread(target=run, args=(i,), name="ferry-fetch-segment", daemon=True)
        for i in range(1, len(pieces))
    ]
    for worker in workers:
        worker.start()
    run(0)
    for worker in workers:
        worker.join()
    if errors:
        # The first failure is the cause; the others are the connections it ended.
        raise transfer.aborted or errors[0]
    transfer.check()
    return length
