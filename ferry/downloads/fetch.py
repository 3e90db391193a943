"""The one way Ferry fetches a URL into a directory.

SSRF safety lives in the connection layer: every connection any request opens
(the first one and every redirect hop) resolves the host once, checks every answer,
and connects to the checked address itself, so a DNS answer that changes between a
check and a connect cannot reach a private address. Host header, SNI and certificate
checks still use the host name.

The body is written raw (no content decoding) into a hidden `.part` file beside the
destination, then published under a name nobody has taken, without ever overwriting.
A big file from a server that accepts byte ranges is fetched over a few connections at
once (`_stream`), each one vetted, capped and cancelled like the first.
"""

from __future__ import annotations

import contextlib
import ctypes
import email.utils
import errno
import fcntl
import http.client
import io
import logging
import os
import secrets
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from importlib import metadata
from pathlib import Path
from urllib.parse import urljoin

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.response import BaseHTTPResponse
from urllib3.util.connection import create_connection

from ferry.downloads import names
from ferry.downloads.policy import (
    DISK_FULL,
    DOMAIN_BLOCKED,
    DOWNLOAD_CANCELLED,
    DOWNLOAD_TIMEOUT,
    FILE_TOO_LARGE,
    NETWORK_ERROR,
    REMOTE_FILE_NOT_FOUND,
    WRITE_ERROR,
    CheckedUrl,
    FetchError,
    FetchPolicy,
    check_address,
    check_url,
    literal_address,
)

log = logging.getLogger(__name__)

# Large reads keep per-chunk overhead (callbacks, syscalls) far below the transfer cost.
CHUNK_SIZE = 512 * 1024
# A plain-HTTP body of known length goes from the socket to the file through a pipe of
# this size inside the kernel (splice): no copy through Python, the GIL released.
SPLICE_PIPE_SIZE = 1024 * 1024
# A file at least this big, from a server that takes byte ranges, is fetched over
# SEGMENTS connections at once, each writing its own part of the one `.part` file.
SEGMENTED_MIN_SIZE = 64 * 1024 * 1024
SEGMENTS = 4
# Written bytes are handed to the disk a window at a time while the body still arrives,
# so the fsync at the end waits for the last window instead of the whole file.
WRITEBACK_WINDOW = 8 * 1024 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
NOT_FOUND_STATUSES = frozenset({404, 410})
MAX_NAME_ATTEMPTS = 10_000
_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# How often the watchdog looks at the cancel flag and the deadline.
_WATCH_INTERVAL = 0.05
# Segments start on multiples of this, so no file-system block holds bytes of two
# segments (a resume reads each segment's progress off the file's holes).
SEGMENT_ALIGNMENT = 1024 * 1024
# A resume fetches again this much before the first hole of each segment: the block
# the hole starts in may be only partly written.
RESUME_MARGIN = 1024 * 1024
MAX_VALIDATOR_LENGTH = 1024


def _version() -> str:
    try:
        return metadata.version("ferry")
    except metadata.PackageNotFoundError:
        return "0.1.0"


USER_AGENT = f"Ferry/{_version()}"


@dataclass(frozen=True)
class Resumable:
    """What lets a fetch cut short by a crash go on where it stopped: the entity's size,
    the validator that proves it unchanged (sent as If-Range), and where each segment
    of the file began (`(0,)` for a file written in order)."""

    length: int
    validator: str
    starts: tuple[int, ...] = (0,)

    @property
    def segmented(self) -> bool:
        return len(self.starts) > 1

    def to_dict(self) -> dict:
        return {"length": self.length, "validator": self.validator, "starts": list(self.starts)}

    @classmethod
    def from_dict(cls, data: object) -> Resumable | None:
        """None for anything this module did not write."""
        if not isinstance(data, dict):
            return None
        length, validator, starts = (data.get(k) for k in ("length", "validator", "starts"))
        if not (
            isinstance(length, int)
            and not isinstance(length, bool)
            and length > 0
            and isinstance(validator, str)
            and 0 < len(validator) <= MAX_VALIDATOR_LENGTH
            and validator.isprintable()
            and isinstance(starts, list)
            and 0 < len(starts) <= SEGMENTS
            and all(isinstance(s, int) and not isinstance(s, bool) for s in starts)
        ):
            return None
        if starts[0] != 0 or starts != sorted(set(starts)) or starts[-1] >= length:
            return None
        return cls(length, validator, tuple(starts))


@dataclass(frozen=True)
class PartialFile:
    """A part file an earlier run left behind, to be finished instead of fetched again."""

    path: Path
    name: str
    resumable: Resumable


@dataclass(frozen=True)
class ResponseInfo:
    url: str
    status: int
    content_length: int | None
    content_type: str | None
    filename: str
    part_path: Path
    # How the transfer could be resumed after a crash (None: it could not).
    resumable: Resumable | None = None
    # Bytes the part file already held when this transfer began (a resume).
    present: int = 0


@dataclass(frozen=True)
class FetchResult:
    path: Path
    filename: str
    size: int
    content_type: str | None


# --- the transfer: deadline, cancel and the sockets it owns ---------------------------


class _Watchdog:
    """One thread that ends every transfer in flight once it is cancelled or overdue.

    Socket timeouts only bound single reads, and a blocked read does not look at the
    cancel flag; so the watchdog shuts a transfer's sockets down, and the reading thread
    then reports why. One thread serves them all (it stops when none is left): a thread
    per transfer would wake twenty times a second each and contend for the GIL with the
    transfers it watches.
    """

    def __init__(self):
        self._transfers: set[_Transfer] = set()
        self._lock = threading.Lock()
        self._running = False

    def watch(self, transfer: _Transfer) -> None:
        with self._lock:
            if not self._running:
                thread = threading.Thread(
                    target=self._run, name="ferry-fetch-watchdog", daemon=True
                )
                # Started before anything changes: if it cannot start, the fetch fails.
                thread.start()
                self._running = True
            self._transfers.add(transfer)

    def forget(self, transfer: _Transfer) -> None:
        with self._lock:
            self._transfers.discard(transfer)

    def _run(self) -> None:
        while True:
            time.sleep(_WATCH_INTERVAL)
            with self._lock:
                if not self._transfers:
                    self._running = False
                    return
                transfers = list(self._transfers)
            for transfer in transfers:
                try:
                    transfer.enforce()
                except Exception:  # one transfer's trouble must not end the watch over the rest
                    log.exception("the download watchdog could not stop a transfer")


_WATCHDOG = _Watchdog()


class _Transfer:
    """State shared by one fetch's connections: its deadline, cancel flag and sockets."""

    def __init__(self, policy: FetchPolicy, cancel: threading.Event | None):
        self.policy = policy
        self.cancel = cancel or threading.Event()
        self.deadline = time.monotonic() + policy.timeout
        self.aborted: FetchError | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> _Transfer:
        _WATCHDOG.watch(self)
        return self

    def __exit__(self, *exc_info) -> None:
        _WATCHDOG.forget(self)

    def _reason(self) -> FetchError | None:
        if self.cancel.is_set():
            return FetchError(DOWNLOAD_CANCELLED, "the download was cancelled")
        if time.monotonic() >= self.deadline:
            return FetchError(
                DOWNLOAD_TIMEOUT, f"the download took longer than {self.policy.timeout:g} s"
            )
        return None

    def enforce(self) -> None:
        """The watchdog's look: end the connections if cancelled or past the deadline."""
        if self.aborted is not None:
            return
        reason = self._reason()
        if reason is not None:
            self.fail(reason)

    def fail(self, error: FetchError) -> None:
        """End every connection of this fetch because one part of it failed."""
        with self._lock:
            self.aborted = self.aborted or error
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.aborted is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def check(self) -> None:
        reason = self.aborted or self._reason()
        if reason is not None:
            raise reason

    def explain(self, exc: BaseException, host: str) -> FetchError:
        """The FetchError for a network exception, preferring the watchdog's reason."""
        if self.aborted is not None:
            return self.aborted
        reason = self._reason()
        if reason is not None:
            return reason
        return _network_error(exc, host, self.policy)


def _root_cause(exc: BaseException) -> BaseException:
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((arg for arg in exc.args if isinstance(arg, BaseException)), None)
        if inner is None:
            inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def _network_error(exc: BaseException, host: str, policy: FetchPolicy) -> FetchError:
    cause = _root_cause(exc)
    # urllib3 derives NewConnectionError (refused, unreachable) from ConnectTimeoutError.
    if isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError):
        return FetchError(
            DOWNLOAD_TIMEOUT, f"could not connect to {host} within {policy.connect_timeout:g} s"
        )
    if isinstance(exc, ReadTimeoutError) or isinstance(
        cause, (ReadTimeoutError, TimeoutError, socket.timeout)
    ):
        return FetchError(DOWNLOAD_TIMEOUT, f"{host} sent nothing for {policy.idle_timeout:g} s")
    if isinstance(exc, urllib3.exceptions.SSLError) or isinstance(
        cause, (urllib3.exceptions.SSLError, ssl.SSLError)
    ):
        return FetchError(NETWORK_ERROR, f"TLS connection to {host} failed: {cause}")
    if isinstance(cause, ConnectionRefusedError):
        return FetchError(NETWORK_ERROR, f"{host} refused the connection")
    if isinstance(cause, (ConnectionResetError, BrokenPipeError)):
        return FetchError(NETWORK_ERROR, f"{host} reset the connection")
    return FetchError(NETWORK_ERROR, f"connection to {host} failed: {cause}")


# --- connections that only ever reach vetted addresses ------------------------------


def _vetted_addresses(host: str, port: int, policy: FetchPolicy) -> list[str]:
    literal = literal_address(host)
    if literal is not None:
        candidates = [str(literal)]
    else:
        try:
            candidates = list(policy.resolve(host, port))
        except (OSError, UnicodeError) as exc:
            raise FetchError(NETWORK_ERROR, f"could not resolve {host}: {exc}") from None
        if not candidates:
            raise FetchError(NETWORK_ERROR, f"could not resolve {host}: no addresses")
    for candidate in candidates:
        ip = literal_address(candidate)
        if ip is None:
            raise FetchError(NETWORK_ERROR, f"the resolver gave {candidate!r} for {host}")
        # One bad answer refuses the host: a name that points inside is not a download
        # source, whatever else it points to.
        check_address(host, ip, policy)
    return candidates


def _open_socket(
    address: tuple[str, int], timeout, source_address, socket_options
) -> socket.socket:
    # A seam for tests that must see where a connection would go without making it.
    return create_connection(
        address, timeout, source_address=source_address, socket_options=socket_options
    )


class _VettedConnectionMixin:
    """Replaces urllib3's resolve-and-connect with resolve, check, connect-to-that-IP."""

    def __init__(self, *args, ferry_transfer: _Transfer, **kwargs):
        self._ferry_transfer = ferry_transfer
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        transfer = self._ferry_transfer
        transfer.check()
        host = self._dns_host.rstrip(".")
        addresses = _vetted_addresses(host, self.port, transfer.policy)
        last_error: OSError | None = None
        for address in addresses:
            try:
                sock = _open_socket(
                    (address, self.port), self.timeout, self.source_address, self.socket_options
                )
            except TimeoutError as exc:
                last_error = ConnectTimeoutError(self, f"connection to {host} timed out")
                last_error.__cause__ = exc
                continue
            except OSError as exc:
                last_error = NewConnectionError(self, f"failed to connect to {host}: {exc}")
                last_error.__cause__ = exc
                continue
            transfer.track(sock)
            return sock
        raise last_error


class _VettedHTTPConnection(_VettedConnectionMixin, HTTPConnection):
    pass


class _VettedHTTPSConnection(_VettedConnectionMixin, HTTPSConnection):
    pass


class _VettedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _VettedHTTPConnection


class _VettedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _VettedHTTPSConnection


class _VettedPoolManager(urllib3.PoolManager):
    def __init__(self, transfer: _Transfer, **kwargs):
        super().__init__(**kwargs)
        self._ferry_transfer = transfer
        self.pool_classes_by_scheme = {"http": _VettedHTTPPool, "https": _VettedHTTPSPool}

    def _new_pool(self, scheme, host, port, request_context=None):
        # Added after the pool key is computed: urllib3 keys pools by known fields only.
        context = dict(request_context if request_context is not None else self.connection_pool_kw)
        context["ferry_transfer"] = self._ferry_transfer
        return super()._new_pool(scheme, host, port, request_context=context)


def _connections(transfer: _Transfer) -> _VettedPoolManager:
    """The connections of one fetch. urllib3 directly, not requests: a session, its
    adapter and request preparation cost more CPU than the rest of a small download.
    Never through a proxy (the address check would vet the proxy, not the target);
    certificates checked against `policy.ca_bundle`, else certifi's bundle.
    """
    bundle = transfer.policy.ca_bundle or certifi.where()
    trust = {"ca_cert_dir": bundle} if os.path.isdir(bundle) else {"ca_certs": bundle}
    return _VettedPoolManager(
        transfer, num_pools=4, maxsize=SEGMENTS, cert_reqs="CERT_REQUIRED", **trust
    )


# --- request, redirects, status ---------------------------------------------------


def _get(
    connections: _VettedPoolManager,
    transfer: _Transfer,
    target: CheckedUrl,
    headers: dict | None = None,
) -> BaseHTTPResponse:
    policy = transfer.policy
    try:
        return connections.urlopen(
            "GET",
            target.url,
            headers={
                "User-Agent": USER_AGENT,
                "Accept-Encoding": "identity",
                "Accept": "*/*",
                **(headers or {}),
            },
            redirect=False,
            retries=False,
            preload_content=False,
            decode_content=False,
            timeout=urllib3.Timeout(connect=policy.connect_timeout, read=policy.idle_timeout),
        )
    except FetchError:
        raise
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        raise transfer.explain(exc, target.host) from None


def _location(response: BaseHTTPResponse) -> str | None:
    location = response.headers.get("Location")
    if location is None:
        return None
    # Header values arrive Latin-1 decoded; redirect targets are usually UTF-8.
    with contextlib.suppress(UnicodeError):
        location = location.encode("latin-1").decode("utf-8")
    return location


def _check_status(response: BaseHTTPResponse, target: CheckedUrl) -> None:
    status = response.status
    if 200 <= status < 300:
        return
    reason = f"HTTP {status} {response.reason or ''}".rstrip()
    if status in NOT_FOUND_STATUSES:
        raise FetchError(REMOTE_FILE_NOT_FOUND, f"{target.host} answered {reason} for {target.url}")
    raise FetchError(NETWORK_ERROR, f"{target.host} answered {reason}")


def _open(
    connections: _VettedPoolManager,
    transfer: _Transfer,
    target: CheckedUrl,
    headers: dict | None = None,
    *,
    passing: frozenset[int] = frozenset(),
):
    """Follow redirects by hand, re-checking each target; return the final response,
    which is a success or has a status in `passing`."""
    policy = transfer.policy
    hops = 0
    while True:
        try:
            response = _get(connections, transfer, target, headers)
        except FetchError as exc:
            if hops and exc.code == DOMAIN_BLOCKED:
                raise FetchError(
                    exc.code, f"redirect to {target.url} refused: {exc.message}"
                ) from None
            raise
        if response.status in passing:
            return response, target
        if response.status not in REDIRECT_STATUSES:
            try:
                _check_status(response, target)
            except FetchError:
                response.close()
                raise
            return response, target
        location = _location(response)
        response.close()
        if not location:
            raise FetchError(NETWORK_ERROR, f"{target.host} redirected without a Location header")
        if hops >= policy.max_redirects:
            raise FetchError(
                NETWORK_ERROR, f"too many redirects (more than {policy.max_redirects})"
            )
        hops += 1
        try:
            target = check_url(urljoin(target.url, location), policy)
        except FetchError as exc:
            raise FetchError(exc.code, f"redirect to {location} refused: {exc.message}") from None


def _header_length(response: BaseHTTPResponse) -> int | None:
    if "chunked" in response.headers.get("Transfer-Encoding", "").lower():
        return None
    value = response.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


def _identity_encoded(response: BaseHTTPResponse) -> bool:
    return response.headers.get("Content-Encoding", "identity").strip().lower() in ("", "identity")


def _strong_validator(response: BaseHTTPResponse) -> str | None:
    """What If-Range may carry for this response (RFC 9110 13.1.5), if anything: a strong
    ETag, else a Last-Modified at least a second older than the response's Date."""
    etag = response.headers.get("ETag", "").strip()
    if etag:
        strong = not etag.startswith("W/") and etag.isprintable()
        return etag if strong and len(etag) <= MAX_VALIDATOR_LENGTH else None
    modified = response.headers.get("Last-Modified", "").strip()
    try:
        modified_at = email.utils.parsedate_to_datetime(modified)
        sent_at = email.utils.parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    if (sent_at - modified_at).total_seconds() < 1 or len(modified) > MAX_VALIDATOR_LENGTH:
        return None
    return modified


def _resumable(response: BaseHTTPResponse, length: int | None) -> Resumable | None:
    if (
        length is None
        or length <= 0
        or response.status != 200
        or not _identity_encoded(response)
        or response.headers.get("Accept-Ranges", "").strip().lower() != "bytes"
    ):
        return None
    validator = _strong_validator(response)
    if validator is None:
        return None
    pieces = _segments(length, SEGMENTS) if _can_segment(response, length) else [(0, length)]
    return Resumable(length, validator, tuple(start for start, _ in pieces))


# --- files ------------------------------------------------------------------------


def _local_error(exc: OSError, what: str) -> FetchError:
    if exc.errno in _SPACE_ERRNOS:
        return FetchError(DISK_FULL, f"not enough disk space to {what}")
    return FetchError(WRITE_ERROR, f"could not {what}: {exc.strerror or exc}")


def _create_part(directory: Path, name: str, tag: str) -> tuple[Path, int]:
    flags = (
        os.O_WRONLY
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_CLOEXEC", 0)
        | getattr(os, "O_NOFOLLOW", 0)
    )
    path = directory / names.part_name(name, tag)
    try:
        return path, os.open(path, flags, 0o644)
    except OSError as exc:
        raise _local_error(exc, f"create a file in {directory}") from None


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
                _fsync_directory(directory)
                return directory / candidate, candidate
        except OSError as exc:
            raise _local_error(exc, f"save {candidate} in {directory}") from None
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


class _Writeback:
    """Starts the disk writing each full window of a stream's bytes as soon as it is written.

    Best effort: a failure here shows up in the fsync that every download ends with.
    """

    def __init__(self, fd: int, offset: int):
        self.fd = fd
        self.offset = offset
        self.handed_over = 0

    def written(self, size: int) -> None:
        pending = size - self.handed_over
        if pending >= WRITEBACK_WINDOW and _sync_file_range is not None:
            _sync_file_range(
                self.fd, self.offset + self.handed_over, pending, _SYNC_FILE_RANGE_WRITE
            )
            self.handed_over = size


def _write_all(fd: int, chunk: bytes, offset: int) -> None:
    view = memoryview(chunk)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _read_failed(
    transfer: _Transfer, exc: BaseException, target: CheckedUrl, size: int, announced: int | None
) -> FetchError:
    error = transfer.explain(exc, target.host)
    if error.code == NETWORK_ERROR:
        expected = f" of {announced}" if announced is not None else ""
        error = FetchError(
            NETWORK_ERROR, f"connection to {target.host} broke after {size}{expected} bytes"
        )
    return error


def _refuse_announced_size(length: int | None, max_size: int | None) -> None:
    """Refuse, before any body byte, a file whose stated size is over the cap."""
    if max_size is not None and length is not None and length > max_size:
        raise FetchError(
            FILE_TOO_LARGE, f"the file is {length} bytes, over the limit of {max_size} bytes"
        )


def _flush(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:
        raise _local_error(exc, "write the file") from None


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


def _splice_rest(
    sock: socket.socket,
    fd: int,
    transfer: _Transfer,
    target: CheckedUrl,
    announced: int | None,
    on_progress: Callable[[int], None] | None,
    writeback: _Writeback,
    *,
    offset: int,
    size: int,
    total: int,
) -> int:
    """Move body bytes `size`..`total` from `sock` to `fd` (at `offset` + position).

    Same checks as reading: cancel and deadline (the watchdog's shutdown ends a wait
    as end of body), idle timeout, size cap, progress; returns the bytes now written.
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
        while size < total:
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
            _too_large(size, max_size)
            while moved:
                try:
                    moved -= os.splice(pipe_out, fd, moved, offset_dst=offset + size - moved)
                except OSError as exc:
                    raise _local_error(exc, "write the file") from None
            writeback.written(size)
            if on_progress is not None:
                on_progress(size)
    finally:
        os.close(pipe_out)
        os.close(pipe_in)
    return size


def _stream_body(
    response: BaseHTTPResponse,
    fd: int,
    transfer: _Transfer,
    target: CheckedUrl,
    announced: int | None,
    on_progress: Callable[[int], None] | None,
    *,
    offset: int = 0,
    limit: int | None = None,
) -> int:
    """Write the body at `offset` in `fd`, stopping after `limit` bytes if given."""
    max_size = transfer.policy.max_size
    # read1 returns what has arrived instead of waiting for a full chunk (urllib3 >= 2.3).
    read = getattr(response, "read1", response.read)
    total = limit if limit is not None else announced
    size = 0
    writeback = _Writeback(fd, offset)
    while limit is None or size < limit:
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
            raise _local_error(exc, "write the file") from None
        writeback.written(size)
        if on_progress is not None:
            on_progress(size)
        if total is not None and size < total and want >= io.DEFAULT_BUFFER_SIZE:
            sock = _spliceable_socket(response)
            if sock is not None:
                size = _splice_rest(
                    sock,
                    fd,
                    transfer,
                    target,
                    announced,
                    on_progress,
                    writeback,
                    offset=offset,
                    size=size,
                    total=total,
                )
                break
    # A shut-down socket reads as a clean end of body; the watchdog knows better.
    transfer.check()
    if announced is not None and size < announced:
        raise FetchError(
            NETWORK_ERROR, f"connection to {target.host} closed after {size} of {announced} bytes"
        )
    return size


def _segments(length: int, count: int) -> list[tuple[int, int]]:
    """At most `count` (start, size) pieces covering `length` bytes in order, each
    starting on a multiple of SEGMENT_ALIGNMENT."""
    step = -(-length // count)
    step = -(-step // SEGMENT_ALIGNMENT) * SEGMENT_ALIGNMENT
    return [(start, min(step, length - start)) for start in range(0, length, step)]


def _range_headers(start: int, size: int, validator: str | None = None) -> dict:
    headers = {"Range": f"bytes={start}-{start + size - 1}"}
    if validator is not None:
        headers["If-Range"] = validator
    return headers


def _serves_range(
    response: BaseHTTPResponse, start: int, size: int, length: int | None = None
) -> bool:
    """Whether `response` is a 206 of exactly bytes start..start+size-1 of an
    identity-encoded entity (of `length` bytes, if given)."""
    end = start + size - 1
    total = response.headers.get("Content-Range", "").rpartition("/")[2]
    return (
        response.status == 206
        and response.headers.get("Content-Range", "").startswith(f"bytes {start}-{end}/")
        and _header_length(response) == size
        and _identity_encoded(response)
        and total.isdigit()
        and (length is None or int(total) == length)
    )


def _open_range(
    connections: _VettedPoolManager,
    transfer: _Transfer,
    target: CheckedUrl,
    start: int,
    size: int,
    resumable: Resumable | None = None,
) -> BaseHTTPResponse | None:
    """A 206 for exactly bytes start..start+size-1 of the same entity, else None."""
    validator = resumable.validator if resumable is not None else None
    length = resumable.length if resumable is not None else None
    response = _get(connections, transfer, target, _range_headers(start, size, validator))
    if _serves_range(response, start, size, length):
        return response
    response.close()
    return None


def _can_segment(response: BaseHTTPResponse, length: int | None) -> bool:
    return (
        length is not None
        and length >= SEGMENTED_MIN_SIZE
        and response.status == 200
        and response.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
        and _identity_encoded(response)
    )


def _stream(
    connections: _VettedPoolManager,
    response: BaseHTTPResponse,
    fd: int,
    transfer: _Transfer,
    target: CheckedUrl,
    length: int | None,
    on_progress: Callable[[int], None] | None,
) -> int:
    """The body into `fd`: over one connection, or in segments when the server allows.

    Segments go through the same connections, so every extra connection is vetted like the
    first, and share the transfer, so cancel and the deadline end them all. The first
    segment is the response already open; if any other range is refused, the fetch
    goes on over that one connection alone.
    """
    if not _can_segment(response, length):
        return _stream_body(response, fd, transfer, target, length, on_progress)
    pieces = _segments(length, SEGMENTS)
    with contextlib.ExitStack() as closing:
        extra = _open_ranges(connections, transfer, target, pieces[1:], closing)
        if extra is None:
            return _stream_body(response, fd, transfer, target, length, on_progress)
        return _stream_segments(
            [response, *extra], pieces, fd, transfer, target, length, on_progress
        )


def _open_ranges(
    connections: _VettedPoolManager,
    transfer: _Transfer,
    target: CheckedUrl,
    pieces: list[tuple[int, int]],
    closing: contextlib.ExitStack,
    resumable: Resumable | None = None,
) -> list[BaseHTTPResponse] | None:
    """One open 206 per piece, closed with `closing`; None (and none open) if the
    server refuses any of them."""
    opened: list[BaseHTTPResponse] = []
    with contextlib.ExitStack() as on_refusal:
        for start, size in pieces:
            ranged = _open_range(connections, transfer, target, start, size, resumable)
            if ranged is None:
                return None
            on_refusal.enter_context(contextlib.closing(ranged))
            opened.append(ranged)
        closing.push(on_refusal.pop_all())
    return opened


def _stream_segments(
    responses: list[BaseHTTPResponse],
    pieces: list[tuple[int, int]],
    fd: int,
    transfer: _Transfer,
    target: CheckedUrl,
    length: int,
    on_progress: Callable[[int], None] | None,
) -> int:
    done = [0] * len(pieces)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run(index: int) -> None:
        def progress(size: int) -> None:
            with lock:
                done[index] = size
                if on_progress is not None:
                    on_progress(sum(done))

        start, size = pieces[index]
        try:
            got = _stream_body(
                responses[index], fd, transfer, target, size, progress, offset=start, limit=size
            )
            if got != size:
                raise FetchError(
                    NETWORK_ERROR, f"connection to {target.host} closed after {got} of {size} bytes"
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


# --- resuming -----------------------------------------------------------------------


def missing_ranges(fd: int, resumable: Resumable) -> list[tuple[int, int]]:
    """The (start, size) pieces a part file still lacks, read off its holes.

    Each segment is written in order from its start, so its bytes run from there to the
    first hole; RESUME_MARGIN before that hole is fetched again. Needs a file system that
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
        resume_at = max(start, written_to - RESUME_MARGIN)
        if resume_at < end:
            missing.append((resume_at, end - resume_at))
    return missing


def reports_holes(directory: Path) -> bool:
    """Whether the file system under `directory` tells written bytes from holes.

    Without that, every byte before a file's end counts as written, which is true of
    a file written in order but not of one written in segments.
    """
    if not hasattr(os, "SEEK_DATA"):
        return False
    probe = directory / f".ferry-holes.{secrets.token_hex(6)}.part"
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        os.pwrite(fd, b"x", SEGMENT_ALIGNMENT)
        return os.lseek(fd, 0, os.SEEK_DATA) > 0
    except OSError:
        return False
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)


def _resume(
    connections: _VettedPoolManager,
    transfer: _Transfer,
    target: CheckedUrl,
    directory: Path,
    partial: PartialFile,
    on_headers: Callable[[ResponseInfo], None] | None,
    on_progress: Callable[[int], None] | None,
) -> FetchResult | None:
    """Fetch what `partial` lacks and publish it. None, with the part file gone, when the
    bytes cannot be trusted or the server no longer serves the same entity by range."""
    resumable = partial.resumable
    published = False
    try:
        _refuse_announced_size(resumable.length, transfer.policy.max_size)
        flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(partial.path, flags)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _local_error(exc, f"open {partial.path.name} in {directory}") from None
        with contextlib.ExitStack() as closing:
            closing.callback(os.close, fd)
            if resumable.segmented and not reports_holes(directory):
                return None
            missing = missing_ranges(fd, resumable)
            if not missing:  # only with no margin at all; nothing to prove the file by
                return None
            if os.fstat(fd).st_size > resumable.length:
                os.ftruncate(fd, resumable.length)
            (start, size), rest = missing[0], missing[1:]
            response, target = _open(
                connections,
                transfer,
                target,
                _range_headers(start, size, resumable.validator),
                # The file shrank: not an error, a different file to fetch whole.
                passing=frozenset({HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE}),
            )
            closing.enter_context(contextlib.closing(response))
            if not _serves_range(response, start, size, resumable.length):
                return None
            extra = _open_ranges(connections, transfer, target, rest, closing, resumable)
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
            _stream_segments(
                [response, *extra], missing, fd, transfer, target, resumable.length, progress
            )
            _flush(fd)
        transfer.check()
        final_path, final_name = publish(partial.path, directory, partial.name)
        published = True
    finally:
        if not published:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial.path)
    return FetchResult(
        path=final_path, filename=final_name, size=resumable.length, content_type=content_type
    )


# --- the one entry point ----------------------------------------------------------


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
) -> FetchResult:
    """Download `url` into `directory`; raises FetchError, leaving no partial file.

    A `CheckedUrl` has passed `check_url` against this policy already and is not
    checked again; a string is.

    `part_tag` names the temporary file (`.<name>.<tag>.part`) so that a caller can
    find it again after a crash, and `partial` is such a file: only what it lacks is
    fetched, when the server still serves the same entity by range; otherwise it is
    removed and the download starts over.
    """
    directory = Path(directory)
    target = url if isinstance(url, CheckedUrl) else check_url(url, policy)
    tag = part_tag or secrets.token_hex(6)
    with _Transfer(policy, cancel) as transfer, _connections(transfer) as connections:
        transfer.check()
        if partial is not None:
            resumed = _resume(
                connections, transfer, target, directory, partial, on_headers, on_progress
            )
            if resumed is not None:
                return resumed
        response, target = _open(connections, transfer, target)
        with contextlib.closing(response):
            wire_length = _header_length(response)
            _refuse_announced_size(wire_length, policy.max_size)
            content_type = response.headers.get("Content-Type")
            name = names.choose_name(
                filename,
                disposition=response.headers.get("Content-Disposition"),
                url_path=target.path,
                content_type=content_type,
            )
            part, fd = _create_part(directory, name, tag)
            try:
                with contextlib.ExitStack() as closing:
                    closing.callback(os.close, fd)
                    if on_headers is not None:
                        on_headers(
                            ResponseInfo(
                                url=target.url,
                                status=response.status,
                                content_length=wire_length if _identity_encoded(response) else None,
                                content_type=content_type,
                                filename=name,
                                part_path=part,
                                resumable=_resumable(response, wire_length),
                            )
                        )
                    size = _stream(
                        connections, response, fd, transfer, target, wire_length, on_progress
                    )
                    _flush(fd)
                transfer.check()
                final_path, final_name = publish(part, directory, name)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(part)
                raise
    return FetchResult(path=final_path, filename=final_name, size=size, content_type=content_type)
