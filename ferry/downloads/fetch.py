"""The one way Ferry fetches a URL into a directory.

SSRF safety lives in the connection layer (`urllib3_vetted`): every connection any
request opens (the first one and every redirect hop) resolves the host once, checks
every answer, and connects to the checked address itself, so a DNS answer that changes
between a check and a connect cannot reach a private address. Host header, SNI and
certificate checks still use the host name.

The body is written raw (no content decoding) into a hidden `.part` file beside the
destination, then published under a name nobody has taken, without ever overwriting.
A big file from a server that accepts byte ranges is fetched over a few connections at
once when its first connection proves slow (`streaming.stream`), each one vetted,
capped and cancelled like the first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from ferry.downloads import names
from ferry.downloads.checksums import Checksum, algorithms_for, check
from ferry.downloads.digests import FileDigest
from ferry.downloads.fetch_types import (
    FetchResult,
    PartialFile,
    ResponseInfo,
    Resumable,
    TransferTuning,
)
from ferry.downloads.part_files import create_part, flush, publish
from ferry.downloads.policy import CheckedUrl, FetchError, FetchPolicy
from ferry.downloads.ranges import resumable_from
from ferry.downloads.request import header_length, identity_encoded, open_following_redirects
from ferry.downloads.resuming import resume
from ferry.downloads.streaming import refuse_announced_size, stream
from ferry.downloads.urllib3_vetted import vetted_connections
from ferry.downloads.watchdog import Transfer


def fetch_to_directory(
    url: str | CheckedUrl,
    directory: Path,
    *,
    policy: FetchPolicy,
    filename: str | None = None,
    on_headers: Callable[[ResponseInfo], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
    part_tag: str | None = None,
    partial: PartialFile | None = None,
    tuning: TransferTuning = TransferTuning(),
    checksum: Checksum | None = None,
    keep_part: Callable[[FetchError], bool] | None = None,
    on_resumable: Callable[[Resumable], None] | None = None,
) -> FetchResult:
    """Download `url` into `directory`; raises FetchError, leaving no partial file.

    A `CheckedUrl` has passed `check_url` against this policy already and is not
    checked again; a string is.

    `part_tag` names the temporary file (`.<name>.<tag>.part`) so that a caller can
    find it again after a crash, and `partial` is such a file: only what it lacks is
    fetched, when the server still serves the same entity by range; otherwise it is
    removed and the download starts over. `tuning` shapes the transfer (segments, resume
    margin, writeback window).

    The written file's sha256, computed while the body streams, is reported, and a
    `checksum` that disagrees with the file fails the fetch before anything is published.
    When the fetch fails and `keep_part` answers true for its error (a pause, a planned
    stop, a failure to be tried again), a part file that can be resumed is left in place
    for a later `partial`. A download announced (in `on_headers`) as segmented that reads
    on over its one connection after all is announced again to `on_resumable` as written
    in order, so that its resume asks for one range; either description resumes it.
    """
    directory = Path(directory)
    target = url if isinstance(url, CheckedUrl) else policy.check_url(url)
    tag = part_tag or secrets.token_hex(6)
    with (
        Transfer(policy, cancel, tuning) as transfer,
        vetted_connections(transfer) as connections,
    ):
        transfer.check()
        on_progress = _moving(transfer, on_progress)
        if partial is not None:
            resumed = resume(
                connections,
                transfer,
                target,
                directory,
                partial,
                on_headers,
                on_progress,
                checksum=checksum,
                keep_part=keep_part,
            )
            if resumed is not None:
                return resumed
        response, target = open_following_redirects(connections, transfer, target)
        with contextlib.closing(response):
            wire_length = header_length(response)
            refuse_announced_size(wire_length, policy.max_size)
            content_type = response.headers.get("Content-Type")
            name = names.choose_name(
                filename,
                disposition=response.headers.get("Content-Disposition"),
                url_path=target.path,
                content_type=content_type,
            )
            part, fd = create_part(directory, name, tag)
            resumable = resumable_from(response, wire_length, tuning)
            try:
                with contextlib.ExitStack() as closing:
                    closing.callback(os.close, fd)
                    digest = closing.enter_context(FileDigest(fd, algorithms_for(checksum)))
                    if on_headers is not None:
                        on_headers(
                            ResponseInfo(
                                url=target.url,
                                status=response.status,
                                content_length=wire_length if identity_encoded(response) else None,
                                content_type=content_type,
                                filename=name,
                                part_path=part,
                                resumable=resumable,
                            )
                        )
                    size = stream(
                        connections,
                        response,
                        fd,
                        transfer,
                        target,
                        wire_length,
                        on_progress,
                        digest,
                        on_in_order=_in_order(resumable, on_resumable),
                    )
                    # The hashing thread finishes the digest while the disk syncs.
                    flush(fd)
                    digests = digest.finish(size, transfer.cancel)
                transfer.check()
                sha256 = check(digests, checksum)
                final_path, final_name = publish(part, directory, name)
            except BaseException as exc:
                keep = (
                    resumable is not None
                    and isinstance(exc, FetchError)
                    and keep_part is not None
                    and keep_part(exc)
                )
                if not keep:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(part)
                raise
    return FetchResult(
        path=final_path, filename=final_name, size=size, content_type=content_type, sha256=sha256
    )


def _in_order(
    resumable: Resumable | None, on_resumable: Callable[[Resumable], None] | None
) -> Callable[[], None] | None:
    if resumable is None or not resumable.segmented or on_resumable is None:
        return None
    return lambda: on_resumable(dataclasses.replace(resumable, starts=(0,)))


def _moving(transfer: Transfer, on_progress: Callable[[int], None] | None) -> Callable[[int], None]:
    """`on_progress`, also telling `transfer` that bytes arrived."""

    def progressed(size: int) -> None:
        transfer.moved()
        if on_progress is not None:
            on_progress(size)

    return progressed
