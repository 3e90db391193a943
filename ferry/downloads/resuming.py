"""Going on with a download a crash cut short: what its part file still lacks, read off
the file's holes, and fetching only that when the server still serves the same entity."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path

from ferry.downloads.checksums import Checksum, algorithms_for, check
from ferry.downloads.digests import FileDigest
from ferry.downloads.fetch_types import FetchResult, PartialFile, ResponseInfo, Resumable
from ferry.downloads.part_files import flush, local_error, publish
from ferry.downloads.policy import CheckedUrl, FetchError
from ferry.downloads.ranges import open_ranges, range_headers, serves_range
from ferry.downloads.request import open_following_redirects
from ferry.downloads.streaming import refuse_announced_size, stream_segments
from ferry.downloads.urllib3_vetted import VettedPoolManager
from ferry.downloads.watchdog import Transfer


def missing_ranges(fd: int, resumable: Resumable, margin: int) -> list[tuple[int, int]]:
    """The (start, size) pieces a part file still lacks, read off its holes.

    Each segment is written in order from its start, so its bytes run from there to the
    first hole; `margin` bytes before that hole is fetched again. Needs a file system that
    reports holes when the file was written in segments (see `reports_holes`).
    """
    length, starts = resumable.length, list(resumable.starts)
    missing = []
    for start, end in zip(starts, [*starts[1:], length], strict=True):
        try:
            if hasattr(os, "SEEK_HOLE"):
                written_to = min(os.lseek(fd, start, os.SEEK_HOLE), end)
            else:  # then the whole file counts as written, as a file system without holes has it
                written_to = min(max(os.fstat(fd).st_size, start), end)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: the file ends before `start`
                raise
            written_to = start
        resume_at = max(start, written_to - margin)
        if resume_at < end:
            missing.append((resume_at, end - resume_at))
    return missing


def present_ranges(missing: list[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """The (start, size) pieces of a `length`-byte part file that `missing` leaves: the
    bytes an earlier run wrote, hashed once from the file when the resume begins."""
    present, at = [], 0
    for start, size in [*missing, (length, 0)]:
        if start > at:
            present.append((at, start - at))
        at = start + size
    return present


def reports_holes(directory: Path, probe_at: int) -> bool:
    """Whether the file system under `directory` tells written bytes from holes.

    Without that, every byte before a file's end counts as written, which is true of
    a file written in order but not of one written in segments. A probe file gets one
    byte at `probe_at` (past its first block) and is asked where its data begins.
    """
    if not hasattr(os, "SEEK_DATA"):
        return False
    probe = directory / f".ferry-holes.{secrets.token_hex(6)}.part"
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        os.pwrite(fd, b"x", probe_at)
        return os.lseek(fd, 0, os.SEEK_DATA) > 0
    except OSError:
        return False
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)


def resume(
    connections: VettedPoolManager,
    transfer: Transfer,
    target: CheckedUrl,
    directory: Path,
    partial: PartialFile,
    on_headers: Callable[[ResponseInfo], None] | None,
    on_progress: Callable[[int], None] | None,
    *,
    checksum: Checksum | None = None,
    keep_part: Callable[[FetchError], bool] | None = None,
) -> FetchResult | None:
    """Fetch what `partial` lacks and publish it. None, with the part file gone, when the
    bytes cannot be trusted or the server no longer serves the same entity by range.

    Failed with an error `keep_part` answers true for, the part file stays for a later resume."""
    resumable = partial.resumable
    published = kept = False
    try:
        refuse_announced_size(resumable.length, transfer.policy.max_size)
        flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(partial.path, flags)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise local_error(exc, f"open {partial.path.name} in {directory}") from None
        with contextlib.ExitStack() as closing:
            closing.callback(os.close, fd)
            if resumable.segmented and not reports_holes(
                directory, transfer.tuning.segment_alignment
            ):
                return None
            missing = missing_ranges(fd, resumable, transfer.tuning.resume_margin)
            if not missing:  # only with no margin at all; nothing to prove the file by
                return None
            if os.fstat(fd).st_size > resumable.length:
                os.ftruncate(fd, resumable.length)
            (start, size), rest = missing[0], missing[1:]
            response, target = open_following_redirects(
                connections,
                transfer,
                target,
                range_headers(start, size, resumable.validator),
                # The file shrank: not an error, a different file to fetch whole.
                passing=frozenset({HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE}),
            )
            closing.enter_context(contextlib.closing(response))
            if not serves_range(response, start, size, resumable.length):
                return None
            extra = open_ranges(connections, transfer, target, rest, closing, resumable)
            if extra is None:
                return None
            present = resumable.length - sum(piece for _, piece in missing)
            content_type = response.headers.get("Content-Type")
            if on_headers is not None:
                on_headers(
                    ResponseInfo(
                        url=target.url,
                        status=response.status,
                        content_length=resumable.length,
                        content_type=content_type,
                        filename=partial.name,
                        part_path=partial.path,
                        resumable=resumable,
                        present=present,
                    )
                )
            progress = None if on_progress is None else (lambda done: on_progress(present + done))
            digest = closing.enter_context(FileDigest(fd, algorithms_for(checksum)))
            for start, size in present_ranges(missing, resumable.length):
                digest.wrote(start, size)
            stream_segments(
                [response, *extra],
                missing,
                fd,
                transfer,
                target,
                resumable.length,
                progress,
                digest,
            )
            flush(fd)
            digests = digest.finish(resumable.length, transfer.cancel)
        transfer.check()
        sha256 = check(digests, checksum)
        final_path, final_name = publish(partial.path, directory, partial.name)
        published = True
    except FetchError as exc:
        kept = keep_part is not None and keep_part(exc)
        raise
    finally:
        if not published and not kept:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial.path)
    return FetchResult(
        path=final_path,
        filename=final_name,
        size=resumable.length,
        content_type=content_type,
        sha256=sha256,
    )
