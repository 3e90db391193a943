"""The hidden part file a body is written into, handed to the disk while it grows, and
published under a name nobody has taken, without ever overwriting a file."""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable
from pathlib import Path

from ferry.downloads import names
from ferry.downloads.policy import DISK_FULL, WRITE_ERROR, FetchError
from ferry.kernel.durable import fsync_directory

MAX_NAME_ATTEMPTS = 10_000
_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def local_error(exc: OSError, what: str) -> FetchError:
    if exc.errno in _SPACE_ERRNOS:
        return FetchError(DISK_FULL, f"not enough disk space to {what}")
    return FetchError(WRITE_ERROR, f"could not {what}: {exc.strerror or exc}")


def create_part(directory: Path, name: str, tag: str) -> tuple[Path, int]:
    # Readable too: the digest reads back what the kernel spliced into it.
    flags = (
        os.O_RDWR
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_CLOEXEC", 0)
        | getattr(os, "O_NOFOLLOW", 0)
    )
    path = directory / names.part_name(name, tag)
    try:
        return path, os.open(path, flags, 0o644)
    except OSError as exc:
        raise local_error(exc, f"create a file in {directory}") from None


_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}
)


def _claim(part: Path, target: Path) -> bool:
    """Give `part` the name `target` unless that name exists; never replaces a file."""
    try:
        os.link(part, target, follow_symlinks=False)
        os.unlink(part)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    # Filesystems without hard links: reserve the name exclusively, then move onto it.
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    os.replace(part, target)
    return True


def _untaken_numbers(directory: Path, name: str):
    """0, then the numbers n whose `numbered(name, n)` is not in `directory` right now.

    One listing instead of one failed claim per taken number: publishing the hundredth
    `index.html` into a directory would otherwise try all 99 names before it.
    """
    yield 0
    try:
        taken = set(os.listdir(directory))
    except OSError:
        taken = set()
    for number in range(1, MAX_NAME_ATTEMPTS):
        if names.numbered(name, number) not in taken:
            yield number


def publish(part: Path, directory: Path, name: str) -> tuple[Path, str]:
    """Move a finished part file to `name`, or `name (1)`, `name (2)`... if taken."""
    for number in _untaken_numbers(directory, name):
        candidate = names.numbered(name, number)
        try:
            if _claim(part, directory / candidate):
                fsync_directory(directory)
                return directory / candidate, candidate
        except OSError as exc:
            raise local_error(exc, f"save {candidate} in {directory}") from None
    raise FetchError(WRITE_ERROR, f"too many files named like {name} in {directory}")


def _load_sync_file_range() -> Callable[..., int] | None:
    """Linux's sync_file_range(2), which the os module does not offer; None elsewhere."""
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_sync_file_range = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2  # start writing the dirty pages out; do not wait for them


class Writeback:
    """Starts the disk writing each full window of a stream's bytes as soon as it is written.

    Best effort: a failure here shows up in the fsync that every download ends with.
    """

    def __init__(self, fd: int, offset: int, window: int):
        self.fd = fd
        self.offset = offset
        self.window = window
        self.handed_over = 0

    def written(self, size: int) -> None:
        pending = size - self.handed_over
        if pending >= self.window and _sync_file_range is not None:
            _sync_file_range(
                self.fd, self.offset + self.handed_over, pending, _SYNC_FILE_RANGE_WRITE
            )
            self.handed_over = size


def flush(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:
        raise local_error(exc, "write the file") from None
