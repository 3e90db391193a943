"""One download as the manager runs it: the handle its starter holds, and the job with
its live progress, speed and ETA (kept in memory, never stored)."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from urllib.parse import urlsplit

from ferry.downloads.checksums import Checksum
from ferry.downloads.fetch_types import PartialFile, TransferTuning
from ferry.downloads.policy import CheckedUrl, FetchError, FetchPolicy
from ferry.downloads.records import percentage, public_view

# Speed is averaged over windows of this many seconds, then smoothed.
_SPEED_WINDOW = 0.5
_SPEED_SMOOTHING = 0.3
# A download's progress is told to its listener at most this often (seconds).
PROGRESS_EVENT_INTERVAL = 0.5


class DownloadHandle:
    """What `start` returns: the id, and ways to wait for the first answer or the end."""

    def __init__(self, record_id: str, lookup: Callable[[str], dict | None]):
        """`lookup` reads a record by id (the manager's `get`)."""
        self.id = record_id
        self._lookup = lookup
        self._answered = threading.Event()
        self._finished = threading.Event()
        self._error: FetchError | None = None
        self._headers_accepted = False

    def wait_for_headers(self, timeout: float | None = None) -> None:
        """Return once the remote answered with an accepted response.

        Raises the FetchError if the download failed before that, or TimeoutError.
        """
        if not self._answered.wait(timeout):
            raise TimeoutError(f"download {self.id} got no answer within {timeout} s")
        if not self._headers_accepted and self._error is not None:
            raise self._error

    def wait(self, timeout: float | None = None) -> dict | None:
        """The finished record, or None if it has not finished within `timeout`."""
        if not self._finished.wait(timeout):
            return None
        return self._lookup(self.id)

    def record(self) -> dict | None:
        return self._lookup(self.id)

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def wait_until_done(self, timeout: float | None = None) -> bool:
        """Whether the download finished within `timeout`, without reading its record."""
        return self._finished.wait(timeout)

    def set_answered(self) -> None:
        """The remote's answer was accepted: `wait_for_headers` returns."""
        self._headers_accepted = True
        self._answered.set()

    def set_finished(self, error: FetchError | None) -> None:
        """The download ended, with `error` unless it completed; every wait returns."""
        self._error = error
        self._answered.set()
        self._finished.set()


@dataclasses.dataclass(eq=False)
class Job:
    record: dict
    directory: Path
    policy: FetchPolicy
    requested_name: str | None
    handle: DownloadHandle
    on_finished: Callable[[dict], None] | None
    tuning: TransferTuning
    partial: PartialFile | None = None
    # Checked when the download was started; a resumed download checks its URL again.
    target: CheckedUrl | None = None
    # What the written file must match before it is published.
    checksum: Checksum | None = None
    # Tries of the transfer so far (the first one included).
    attempts: int = 0
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    stop_code: str | None = None
    future: Future | None = None
    finished: bool = False
    current: int = 0
    speed: float = 0.0
    sample_time: float = 0.0
    sample_bytes: int = 0
    answered_time: float = 0.0
    # Set while the record that would let this download resume is not yet durable.
    checkpoint: Callable[[], None] | None = None
    # Told of the progress, at most every PROGRESS_EVENT_INTERVAL seconds.
    on_progress: Callable[[Job], None] | None = None
    progress_told: float = 0.0
    clock: Callable[[], float] = time.monotonic
    # Whether it holds one of its host's transfer slots (else it waits for one).
    holds_slot: bool = False

    @property
    def host(self) -> str:
        """The host its transfer starts from, which per-host limits count."""
        if self.target is not None:
            return self.target.host
        return (urlsplit(self.record["url"]).hostname or "").lower()

    def progress(self, size: int) -> None:
        # Called per chunk from the worker: plain arithmetic, no locks, no storage.
        self.current = size
        now = self.clock()
        if self.checkpoint is not None and (
            size >= self.tuning.checkpoint_after_bytes
            or now - self.answered_time >= self.tuning.checkpoint_after_seconds
        ):
            checkpoint, self.checkpoint = self.checkpoint, None
            checkpoint()
        elapsed = now - self.sample_time
        if elapsed >= _SPEED_WINDOW:
            rate = (size - self.sample_bytes) / elapsed
            self.speed = (
                rate
                if self.speed == 0
                else (_SPEED_SMOOTHING * rate + (1 - _SPEED_SMOOTHING) * self.speed)
            )
            self.sample_time, self.sample_bytes = now, size
        if self.on_progress is not None and now - self.progress_told >= PROGRESS_EVENT_INTERVAL:
            self.progress_told = now
            self.on_progress(self)

    def live(self) -> dict:
        record = public_view(self.record)
        current, expected, speed = self.current, record["expected_size"], self.speed
        record["current_size"] = current
        record["attempts"] = self.attempts
        record["progress_percentage"] = percentage(current, expected)
        record["speed"] = int(speed)
        record["eta"] = (
            math.ceil(max(expected - current, 0) / speed)
            if expected is not None and speed > 0
            else None
        )
        return record
