"""A fetch's deadline and cancel flag, held over every socket it opens, and what a
network exception means to the user."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ReadTimeoutError,
)

from ferry.downloads.fetch_types import TransferTuning
from ferry.downloads.policy import (
    DOWNLOAD_CANCELLED,
    DOWNLOAD_TIMEOUT,
    NETWORK_ERROR,
    FetchError,
    FetchPolicy,
)

# What goes wrong here goes wrong in a fetch, and is logged under the fetch's name.
log = logging.getLogger("ferry.downloads.fetch")

# How often the watchdog looks at the cancel flag and the deadline.
_WATCH_INTERVAL = 0.05


class _Watchdog:
    """One thread that ends every transfer in flight once it is cancelled or overdue.

    Socket timeouts only bound single reads, and a blocked read does not look at the
    cancel flag; so the watchdog shuts a transfer's sockets down, and the reading thread
    then reports why. One thread serves them all (it stops when none is left): a thread
    per transfer would wake twenty times a second each and contend for the GIL with the
    transfers it watches.
    """

    def __init__(self):
        self._transfers: set[Transfer] = set()
        self._lock = threading.Lock()
        self._running = False

    def watch(self, transfer: Transfer) -> None:
        with self._lock:
            if not self._running:
                thread = threading.Thread(
                    target=self._run, name="ferry-fetch-watchdog", daemon=True
                )
                # Started before anything changes: if it cannot start, the fetch fails.
                thread.start()
                self._running = True
            self._transfers.add(transfer)

    def forget(self, transfer: Transfer) -> None:
        with self._lock:
            self._transfers.discard(transfer)

    def count(self) -> int:
        with self._lock:
            return len(self._transfers)

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


def transfers_under_way() -> int:
    """How many fetches this process is running."""
    return _WATCHDOG.count()


class Transfer:
    """State shared by one fetch's connections: its deadline, cancel flag and sockets,
    and the tuning they all follow."""

    def __init__(self, policy: FetchPolicy, cancel: threading.Event | None, tuning: TransferTuning):
        self.policy = policy
        self.tuning = tuning
        self.cancel = cancel or threading.Event()
        started = time.monotonic()
        # Pushed back by every byte received: `timeout` bounds time without progress.
        self.deadline = started + policy.timeout
        self.final_deadline = None if policy.max_duration is None else started + policy.max_duration
        self.aborted: FetchError | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Transfer:
        _WATCHDOG.watch(self)
        return self

    def __exit__(self, *exc_info) -> None:
        _WATCHDOG.forget(self)

    def moved(self) -> None:
        """Bytes arrived: the time without progress starts again."""
        self.deadline = time.monotonic() + self.policy.timeout

    def _reason(self) -> FetchError | None:
        if self.cancel.is_set():
            return FetchError(DOWNLOAD_CANCELLED, "the download was cancelled")
        at = time.monotonic()
        if self.final_deadline is not None and at >= self.final_deadline:
            return FetchError(
                DOWNLOAD_TIMEOUT,
                f"the download took longer than its maximum of {self.policy.max_duration:g} s",
            )
        if at >= self.deadline:
            return FetchError(
                DOWNLOAD_TIMEOUT,
                f"no data arrived for {self.policy.timeout:g} s (the download's timeout)",
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
            DOWNLOAD_TIMEOUT,
            f"could not connect to {host} within {policy.connect_timeout:g} s",
            transient=True,
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
        return FetchError(NETWORK_ERROR, f"{host} refused the connection", transient=True)
    if isinstance(cause, (ConnectionResetError, BrokenPipeError)):
        return FetchError(NETWORK_ERROR, f"{host} reset the connection", transient=True)
    return FetchError(NETWORK_ERROR, f"connection to {host} failed: {cause}", transient=True)
