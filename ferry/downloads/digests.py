"""Digests of a file computed while it is written, in file order whatever order its
bytes arrive in.

Writers report each range they have put into the file, with the bytes when they hold
them. One hashing thread consumes the file from its start: a range that extends what
has been hashed so far is hashed from the writer's bytes; bytes the writer never held
(spliced in the kernel), bytes that arrived ahead of the hashed prefix (a later segment
of a parallel download), bytes already on disk when a download resumes, and bytes that
would push the queue past `QUEUED_BYTES` are read back from the file once the prefix
reaches them. Those were written moments before and are read from the page cache; the
memory held is the queue's bound plus one read buffer, however far ahead a segment runs.
hashlib releases the GIL while it hashes a large buffer, so hashing overlaps the
network and the disk on another core.
"""

from __future__ import annotations

import collections
import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

from ferry.downloads.part_files import local_error
from ferry.downloads.policy import DOWNLOAD_CANCELLED, FetchError
from ferry.downloads.priority import yield_to_requests

# Received bytes waiting for the hashing thread; beyond this a writer's bytes are
# read back from the file instead of being held.
QUEUED_BYTES = 4 * 1024 * 1024
READ_BACK_SIZE = 1024 * 1024
# How often a caller waiting for the last bytes to be hashed looks at its cancel flag.
CANCEL_CHECK_SECONDS = 0.1


class FileDigest:
    """The digests (`algorithms`, by hashlib name) of the file open for reading as `fd`.

    Use as a context manager, which stops the hashing thread (started when bytes are
    first queued for it) and, for a second algorithm, a thread that hashes the same
    buffers alongside it; `wrote` from any thread, or `hash_now` from the one thread
    that moves the body, then `finish` once every byte is in the file.
    """

    def __init__(self, fd: int, algorithms: tuple[str, ...] = ("sha256",)):
        self._fd = fd
        self._hashes = {name: hashlib.new(name) for name in algorithms}
        self._changed = threading.Condition()
        # (offset, bytes or None to read them back, size), in file order.
        self._queue: collections.deque[tuple[int, bytes | memoryview | None, int]] = (
            collections.deque()
        )
        self._queued_bytes = 0
        # End of what has been queued: every byte before it is hashed or on its way.
        self._frontier = 0
        # Ranges written beyond the frontier, start -> end, and end -> start to join
        # a segment's consecutive writes into one range.
        self._ahead: dict[int, int] = {}
        self._ahead_ends: dict[int, int] = {}
        self._hashed = 0
        # A caller is hashing bytes itself (`hash_now`): the thread waits its turn.
        self._hashing_here = False
        self._stopping = False
        self._error: Exception | None = None
        self._thread: threading.Thread | None = None
        self._alongside: ThreadPoolExecutor | None = None
        # The digests of the whole file, computed elsewhere (`adopt`).
        self._adopted: dict[str, str] | None = None

    def __enter__(self) -> FileDigest:
        if len(self._hashes) > 1:
            self._alongside = ThreadPoolExecutor(
                1, thread_name_prefix="ferry-fetch-digest", initializer=yield_to_requests
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self._changed:
            self._stopping = True
            self._queue.clear()
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()
        if self._alongside is not None:
            self._alongside.shutdown()

    def wrote(self, offset: int, size: int, data: bytes | memoryview | None = None) -> None:
        """`size` bytes are in the file at `offset`; `data`, if given, is them, and must
        not change afterwards."""
        if size <= 0:
            return
        end = offset + size
        with self._changed:
            if end <= self._frontier:
                return  # fetched again (a resume's margin): hashed already
            if offset > self._frontier:
                self._note_ahead(offset, end)
                return
            if data is not None and offset < self._frontier:
                data = memoryview(data)[self._frontier - offset :]
            self._enqueue(self._frontier, data, end)
            self._take_ahead()
            self._changed.notify_all()

    def holding(self, offset: int, data: memoryview) -> None:
        """`data` are the bytes at `offset`, where those reported so far end; they are
        hashed from `data` however much is queued, and need not be in the file yet.

        For a writer that bounds what it hands over itself and keeps each buffer
        unchanged until `wait_hashed` has passed its end: bytes written past the page
        cache cannot be read back cheaply.
        """
        with self._changed:
            if offset != self._frontier or self._ahead:
                raise ValueError(f"bytes at {offset} do not follow the {self._frontier} reported")
            self._queued_bytes += len(data)
            self._queue.append((offset, data, len(data)))
            self._frontier = offset + len(data)
            self._start_hashing()
            self._changed.notify_all()

    def hash_now(self, offset: int, data: bytes | memoryview) -> None:
        """Hash `data`, the bytes at `offset` where those reported so far end, in the
        calling thread, once everything before them is hashed; `data` may change as
        soon as this returns. For a body moved by one thread, which then needs no
        hashing thread at all."""
        with self._changed:
            if offset != self._frontier or self._ahead:
                raise ValueError(f"bytes at {offset} do not follow the {self._frontier} reported")
            while self._hashed < offset and self._error is None and not self._stopping:
                self._changed.wait()
            if self._error is not None or self._stopping:
                return  # `finish` tells what happened
            self._frontier = offset + len(data)
            self._hashing_here = True
        try:
            self._update(data)
        finally:
            with self._changed:
                self._hashing_here = False
                self._hashed += len(data)
                self._changed.notify_all()

    @property
    def algorithms(self) -> list[str]:
        return list(self._hashes)

    def hand_over(self, at: int) -> bool:
        """Whether the rest of the file, from `at`, can be hashed elsewhere, together
        with the file's first `at` bytes read back: every byte reported so far ends at
        `at` and is hashed (waited for). It changes nothing: the caller may still hash
        the rest here, or `adopt` what was computed elsewhere."""
        with self._changed:
            if self._frontier != at or self._ahead or self._adopted is not None:
                return False
            while self._hashed < at and self._error is None and not self._stopping:
                self._changed.wait()
            return self._hashed == at and self._error is None and not self._stopping

    def adopt(self, end: int, digests: dict[str, str]) -> None:
        """The file's first `end` bytes were hashed elsewhere, with these digests (one
        per algorithm) after a `hand_over`."""
        if set(digests) != set(self._hashes):
            raise ValueError(f"digests of {sorted(digests)}, not of {sorted(self._hashes)}")
        with self._changed:
            self._frontier = self._hashed = end
            self._adopted = dict(digests)
            self._changed.notify_all()

    def wait_hashed(self, end: int, cancel: threading.Event | None = None) -> bool:
        """Wait until the file's first `end` bytes are hashed, hashing has failed or
        stopped, or `cancel` is set; answer whether they are hashed (`finish` tells
        what happened otherwise)."""
        with self._changed:
            while self._hashed < end and self._error is None and not self._stopping:
                if cancel is not None and cancel.is_set():
                    break
                self._changed.wait(CANCEL_CHECK_SECONDS)
            return self._hashed >= end

    def finish(self, length: int, cancel: threading.Event | None = None) -> dict[str, str]:
        """The hex digest of each algorithm over the file's first `length` bytes, once
        hashed; call after every byte of them was reported through `wrote`.

        Raises FetchError when the file could not be read back, and DOWNLOAD_CANCELLED
        as soon as `cancel` is set: the part of a big file still to be read back must
        not hold up a cancel.
        """
        with self._changed:
            if self._frontier < length:
                raise ValueError(f"only {self._frontier} of {length} bytes were written in order")
            while self._hashed < length and self._error is None:
                if cancel is not None and cancel.is_set():
                    raise FetchError(DOWNLOAD_CANCELLED, "the download was cancelled")
                self._changed.wait(CANCEL_CHECK_SECONDS)
            if isinstance(self._error, OSError):
                raise local_error(self._error, "read the file back to hash it") from None
            if self._error is not None:
                raise self._error
            if self._hashed != length:
                raise ValueError(f"{self._hashed} bytes were hashed, not {length}")
            if self._adopted is not None:
                return dict(self._adopted)
            return {name: digest.hexdigest() for name, digest in self._hashes.items()}

    # --- under the lock ------------------------------------------------------------

    def _note_ahead(self, offset: int, end: int) -> None:
        start = self._ahead_ends.pop(offset, offset)
        following = self._ahead.pop(end, None)
        if following is not None:
            del self._ahead_ends[following]
            end = following
        self._ahead[start] = end
        self._ahead_ends[end] = start

    def _take_ahead(self) -> None:
        """Queue, to be read back, the ranges written ahead that now follow the frontier."""
        while (end := self._ahead.pop(self._frontier, None)) is not None:
            del self._ahead_ends[end]
            self._enqueue(self._frontier, None, end)

    def _enqueue(self, offset: int, data: bytes | memoryview | None, end: int) -> None:
        size = end - offset
        if data is not None and self._queued_bytes + size > QUEUED_BYTES:
            data = None
        if data is None and self._queue and self._queue[-1][1] is None:
            last_offset, _, last_size = self._queue.pop()
            offset, size = last_offset, last_size + size
        elif data is not None:
            self._queued_bytes += size
        self._queue.append((offset, data, size))
        self._frontier = end
        self._start_hashing()

    def _start_hashing(self) -> None:
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(
                target=self._run, name="ferry-fetch-digest", daemon=True
            )
            self._thread.start()

    # --- the hashing thread ----------------------------------------------------------

    def _run(self) -> None:
        yield_to_requests()
        # Made at the first read-back: a download whose bytes all pass through a
        # writer's hands never needs it.
        view: memoryview | None = None
        while True:
            with self._changed:
                while (not self._queue or self._hashing_here) and not self._stopping:
                    self._changed.wait()
                if self._stopping:
                    return
                offset, data, size = self._queue.popleft()
            try:
                if data is not None:
                    self._update(data)
                else:
                    if view is None:
                        view = memoryview(bytearray(READ_BACK_SIZE))
                    self._read_back(offset, size, view)
            except Exception as exc:  # told to the caller waiting in `finish`
                with self._changed:
                    self._error = exc
                    self._changed.notify_all()
                return
            with self._changed:
                if data is not None:
                    self._queued_bytes -= size
                self._hashed += size
                self._changed.notify_all()

    def _update(self, data: bytes | memoryview) -> None:
        first, *others = self._hashes.values()
        if self._alongside is None:
            first.update(data)
            return
        pending = [self._alongside.submit(other.update, data) for other in others]
        first.update(data)
        for done in pending:
            done.result()

    def _read_back(self, offset: int, size: int, view: memoryview) -> None:
        end = offset + size
        while offset < end:
            read = os.preadv(self._fd, [view[: min(len(view), end - offset)]], offset)
            if not read:
                raise OSError(0, f"the file ends at {offset}, before {end}")
            self._update(view[:read])
            offset += read
            with self._changed:
                if self._stopping:
                    return
