"""Runs downloads on a bounded pool of threads and keeps their records.

A record is written to storage on each state change only: created (`starting`),
headers accepted (`downloading`) and finished (`completed`, `failed`, `cancelled`).
Bytes, speed and ETA live in memory and are read from there by `active()`. The
headers-accepted record of a download that could resume after a crash says how, and is
flushed to disk in the background once the download has run a while.

The manager's lock guards memory only and is never held while storage writes: a
state is saved (durably) first and shown in memory after, so readers such as
`active()` never wait for a disk and never see a state a crash could take back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from ferry.downloads import names
from ferry.downloads.fetch import fetch_to_directory
from ferry.downloads.fetch_types import (
    FetchResult,
    PartialFile,
    ResponseInfo,
    Resumable,
    TransferTuning,
)
from ferry.downloads.policy import (
    DOWNLOAD_CANCELLED,
    NETWORK_ERROR,
    SERVER_STOPPED,
    CheckedUrl,
    FetchError,
    FetchPolicy,
    check_url,
)
from ferry.kernel.ids import download_id
from storage.downloads import DownloadRepository

log = logging.getLogger(__name__)

STARTING = "starting"
DOWNLOADING = "downloading"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"

# Fields kept in storage for recovery but never shown to clients.
_LOCAL = "_local"
# Speed is averaged over windows of this many seconds, then smoothed.
_SPEED_WINDOW = 0.5
_SPEED_SMOOTHING = 0.3

_MESSAGES = {COMPLETED: "Download completed"}
_STOPPED_MESSAGE = "the server stopped before the download finished"


def _now() -> int:
    return int(time.time())


def _part_tag(record_id: str) -> str:
    return record_id.replace("-", "")[:16]


def _percentage(current: int, expected: int | None) -> float | None:
    if expected is None:
        return None
    if expected <= 0:
        return 100.0
    # Rounded down, so 100.0 is shown only once every byte is there.
    return min(100.0, math.floor(current * 1000 / expected) / 10)


def _named(record: dict, filename: str) -> dict:
    """`record` with its file name and the display path that goes with it."""
    display = record["directory"].rstrip("/")
    file_path = f"{display}/{filename}" if display else filename
    return {**record, "filename": filename, "file_path": file_path}


def _closed(
    record: dict, status: str, *, error: str | None, message: str, total_bytes: int | None
) -> dict:
    """`record` in a final state. `finished_ns` orders downloads ending in the same second."""
    return {
        **record,
        "status": status,
        "total_bytes": total_bytes,
        "end_time": max(_now(), record.get("start_time") or 0),
        "error": error,
        "message": message,
        _LOCAL: {**(record.get(_LOCAL) or {}), "finished_ns": time.time_ns()},
    }


def public_view(record: dict) -> dict:
    """A record as clients see it, without the local bookkeeping."""
    return {k: v for k, v in record.items() if k != _LOCAL}


class DownloadListener(Protocol):
    """Told of each state change, after it is stored (metrics, logs). Called outside the
    manager's lock; it must be quick and must not raise."""

    def download_started(self, record: dict) -> None: ...

    def download_answered(self, record: dict) -> None: ...

    def download_resumed(self, record: dict) -> None: ...

    def download_finished(self, record: dict) -> None: ...


class DownloadHandle:
    """What `start` returns: the id, and ways to wait for the first answer or the end."""

    def __init__(self, manager: DownloadManager, record_id: str):
        self.id = record_id
        self._manager = manager
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
        return self._manager.get(self.id)

    def record(self) -> dict | None:
        return self._manager.get(self.id)

    @property
    def done(self) -> bool:
        return self._finished.is_set()


@dataclasses.dataclass(eq=False)
class _Job:
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

    def progress(self, size: int) -> None:
        # Called per chunk from the worker: plain arithmetic, no locks, no storage.
        self.current = size
        now = time.monotonic()
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

    def live(self) -> dict:
        record = public_view(self.record)
        current, expected, speed = self.current, record["expected_size"], self.speed
        record["current_size"] = current
        record["progress_percentage"] = _percentage(current, expected)
        record["speed"] = int(speed)
        record["eta"] = (
            math.ceil(max(expected - current, 0) / speed)
            if expected is not None and speed > 0
            else None
        )
        return record


class DownloadManager:
    def __init__(
        self,
        repository: DownloadRepository,
        policy: FetchPolicy,
        *,
        max_concurrent: int = 3,
        history_limit: int = 1000,
        listener: DownloadListener | None = None,
        on_idle: Callable[[], None] | None = None,
        tuning: TransferTuning = TransferTuning(),
    ):
        """Builds the manager; `startup` starts its workers.

        `on_idle` is called each time the last running download has ended. `tuning`
        shapes every transfer and says when a resumable download's record is flushed.
        """
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._repository = repository
        self._policy = policy
        self._history_limit = history_limit
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.RLock()
        self._stopping = False
        self._listener = listener
        # Bytes received by finished downloads; those in flight are added when asked.
        self._bytes_finished = 0
        self._max_concurrent = max_concurrent
        self._on_idle = on_idle
        self._pool: ThreadPoolExecutor | None = None
        self._tuning = tuning

    @property
    def policy(self) -> FetchPolicy:
        return self._policy

    # --- starting ------------------------------------------------------------------

    def start(
        self,
        url: str | CheckedUrl,
        directory: Path,
        display_directory: str,
        *,
        filename: str | None = None,
        timeout: float | None = None,
        kind: str = "file",
        on_finished: Callable[[dict], None] | None = None,
    ) -> DownloadHandle:
        """Validate `url` (unless it is a `CheckedUrl` already) and queue its download
        into `directory`.

        Raises FetchError (INVALID_URL, DOMAIN_BLOCKED) before anything is recorded,
        and FetchError(SERVER_STOPPED) once shutdown has begun.
        """
        policy = self._policy
        if timeout is not None:
            if timeout <= 0:
                raise ValueError("timeout must be positive")
            policy = dataclasses.replace(policy, timeout=float(timeout))
        target = url if isinstance(url, CheckedUrl) else check_url(url, policy)
        name = names.choose_name(filename, url_path=target.path)
        record_id = download_id()
        record = {
            "id": record_id,
            "kind": kind,
            "directory": display_directory,
            "url": target.given or target.url,
            "status": STARTING,
            "current_size": 0,
            "expected_size": None,
            "progress_percentage": None,
            "start_time": _now(),
            _LOCAL: {
                "directory": str(directory),
                "part_path": None,
                "tag": _part_tag(record_id),
                # What a resume after a crash must ask for again.
                "requested_name": filename,
                "timeout": timeout,
            },
        }
        record = _named(record, name)
        handle = DownloadHandle(self, record_id)
        job = _Job(
            record,
            Path(directory),
            policy,
            filename,
            handle,
            on_finished,
            tuning=self._tuning,
            target=target,
        )
        stopped = FetchError(SERVER_STOPPED, "the server is shutting down")
        with self._lock:
            if self._pool is None:
                raise RuntimeError("DownloadManager.startup() has not been called")
            if self._stopping:
                raise stopped
        self._repository.save(record)
        with self._lock:
            if not self._stopping:
                self._jobs[record_id] = job
                job.future = self._pool.submit(self._run, job)
                started = True
            else:
                started = False
        if started:
            self._tell("download_started", public_view(record))
            return handle
        # Shutdown began while the record was written: close it, as shutdown would have.
        self._finish(job, error=FetchError(SERVER_STOPPED, _STOPPED_MESSAGE))
        raise stopped

    def _tell(self, what: str, record: dict) -> None:
        if self._listener is None:
            return
        try:
            getattr(self._listener, what)(record)
        except Exception:
            log.exception("download listener failed on %s", what)

    # --- the worker ----------------------------------------------------------------

    def _run(self, job: _Job) -> None:
        if job.finished:
            return
        try:
            result = fetch_to_directory(
                job.target or job.record["url"],
                job.directory,
                policy=job.policy,
                filename=job.requested_name,
                on_headers=lambda info: self._headers(job, info),
                on_progress=job.progress,
                cancel=job.cancel,
                part_tag=job.record[_LOCAL]["tag"],
                partial=job.partial,
                tuning=self._tuning,
            )
        except FetchError as exc:
            self._finish(job, error=exc)
        except Exception as exc:  # a bug must still end the record, not leave it running
            log.exception("download %s crashed", job.record["id"])
            self._finish(job, error=FetchError(NETWORK_ERROR, f"unexpected error: {exc}"))
        else:
            self._finish(job, result=result)

    def _headers(self, job: _Job, info: ResponseInfo) -> None:
        # Only this job's worker changes job.record before it finishes.
        record = _named(job.record, info.filename)
        record.update(
            status=DOWNLOADING,
            expected_size=info.content_length,
            progress_percentage=_percentage(0, info.content_length),
        )
        record[_LOCAL] = {
            **record[_LOCAL],
            "part_path": str(info.part_path),
            "resume": info.resumable.to_dict() if info.resumable is not None else None,
        }
        # Not waited for: the finish (or a crash's recovery, which finds the part file by
        # its tag) supersedes it, and the start of another download must not queue
        # behind one more disk flush.
        self._repository.save(record, wait=False)
        with self._lock:
            job.record = record
            job.current = job.sample_bytes = info.present
            job.sample_time = job.answered_time = time.monotonic()
            if info.resumable is not None:
                job.checkpoint = self._checkpoint
        job.handle._headers_accepted = True
        job.handle._answered.set()
        self._tell("download_answered", public_view(record))

    def _checkpoint(self) -> None:
        """Make the saves not yet durable so, without holding up the caller (a transfer,
        which may be holding its segments' lock)."""

        def flush() -> None:
            try:
                self._repository.flush()
            except Exception:  # the store closing under it, a disk error: the finish retries
                log.debug("could not flush download records", exc_info=True)

        threading.Thread(target=flush, name="ferry-download-checkpoint", daemon=True).start()

    def _finish(
        self, job: _Job, *, result: FetchResult | None = None, error: FetchError | None = None
    ) -> None:
        with self._lock:
            if job.finished:
                return
            job.finished = True
            if (
                error is not None
                and error.code == DOWNLOAD_CANCELLED
                and job.stop_code == SERVER_STOPPED
            ):
                error = FetchError(SERVER_STOPPED, _STOPPED_MESSAGE)
            if result is not None:
                record = _named(job.record, result.filename)
                record.update(current_size=result.size, progress_percentage=100.0)
                record = _closed(
                    record,
                    COMPLETED,
                    error=None,
                    message=_MESSAGES[COMPLETED],
                    total_bytes=result.size,
                )
            else:
                record = dict(job.record)
                record.update(
                    current_size=job.current,
                    progress_percentage=_percentage(job.current, record["expected_size"]),
                )
                status = CANCELLED if error.code == DOWNLOAD_CANCELLED else FAILED
                record = _closed(
                    record, status, error=error.code, message=error.message, total_bytes=None
                )
        # Until the save returns, readers see the job as it was; then the saved record.
        try:
            self._repository.save(record)
            self._repository.prune_history(self._history_limit)
        finally:
            with self._lock:
                job.record = record
                self._jobs.pop(record["id"], None)
                self._bytes_finished += result.size if result is not None else max(job.current, 0)
                idle = not self._jobs
            job.handle._error = error
            job.handle._answered.set()
            job.handle._finished.set()
        self._tell("download_finished", public_view(record))
        if job.on_finished is not None:
            try:
                job.on_finished(public_view(record))
            except Exception:
                log.exception("on_finished callback for download %s failed", record["id"])
        if idle and self._on_idle is not None:
            try:
                self._on_idle()
            except Exception:
                log.exception("on_idle callback failed")

    # --- reading -------------------------------------------------------------------

    def get(self, record_id: str) -> dict | None:
        with self._lock:
            job = self._jobs.get(record_id)
            if job is not None:
                return job.live()
        record = self._repository.get(record_id)
        return public_view(record) if record is not None else None

    def active(self, directory: str | None = None) -> list[dict]:
        """Downloads queued or running, oldest first; only those into `directory` if given."""
        with self._lock:
            jobs = list(self._jobs.values())
        records = [job.live() for job in jobs]
        if directory is not None:
            records = [r for r in records if r["directory"] == directory]
        records.sort(key=lambda r: (r["start_time"], r["id"]))
        return records

    def stats(self) -> dict:
        """In-memory figures for metrics: downloads by live status, and bytes received
        by every download of this process (finished ones plus those in flight)."""
        with self._lock:
            jobs = list(self._jobs.values())
            received = self._bytes_finished + sum(job.current for job in jobs)
        downloading = sum(1 for job in jobs if job.record["status"] == DOWNLOADING)
        return {"starting": len(jobs) - downloading, "downloading": downloading, "bytes": received}

    def history(self, limit: int | None = None) -> list[dict]:
        return [public_view(r) for r in self._repository.history(limit)]

    # --- stopping ------------------------------------------------------------------

    def _stop(self, job: _Job, code: str) -> None:
        job.stop_code = job.stop_code or code
        job.cancel.set()
        if job.future is not None and job.future.cancel():
            # It never started, so no thread will finish it.
            self._finish(job, error=FetchError(DOWNLOAD_CANCELLED, "the download was cancelled"))

    def cancel(self, record_id: str) -> bool:
        """Stop a queued or running download; False if it is unknown or already finished."""
        with self._lock:
            job = self._jobs.get(record_id)
            if job is None or job.finished:
                return False
            self._stop(job, DOWNLOAD_CANCELLED)
            return True

    def startup(self, *, resume: bool = False) -> list[str]:
        """Start the workers, then deal with what a previous run left unfinished.

        With `resume`, a file download whose server took byte ranges and gave a validator
        goes on from its part file (its record keeps its id); every other one is failed
        with SERVER_STOPPED and its part file deleted. Returns the ids of the records
        it closed.
        """
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._max_concurrent, thread_name_prefix="ferry-download"
                )
        closed = []
        for record in self._repository.unfinished():
            with self._lock:
                if record["id"] in self._jobs:
                    continue
            partial = _partial_file(record) if resume else None
            if partial is not None and self._resume(record, partial):
                continue
            _remove_leftovers(record.get(_LOCAL) or {})
            record = _closed(
                record, FAILED, error=SERVER_STOPPED, message=_STOPPED_MESSAGE, total_bytes=None
            )
            self._repository.save(record)
            closed.append(record["id"])
            self._tell("download_finished", public_view(record))
        if closed:
            self._repository.prune_history(self._history_limit)
        return closed

    def _resume(self, record: dict, partial: PartialFile) -> bool:
        """Queue the rest of a download a crash cut short; False once shutdown has begun."""
        local = record[_LOCAL]
        policy = self._policy
        if local.get("timeout") is not None:
            policy = dataclasses.replace(policy, timeout=float(local["timeout"]))
        record = {**record, "status": STARTING}
        job = _Job(
            record,
            Path(local["directory"]),
            policy,
            local.get("requested_name"),
            DownloadHandle(self, record["id"]),
            None,
            tuning=self._tuning,
            partial=partial,
        )
        self._repository.save(record, wait=False)
        with self._lock:
            if self._stopping:
                return False
            self._jobs[record["id"]] = job
            job.future = self._pool.submit(self._run, job)
        self._tell("download_resumed", public_view(record))
        return True

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop every download (recorded as SERVER_STOPPED) and wait for the workers."""
        with self._lock:
            self._stopping = True
            jobs = list(self._jobs.values())
            for job in jobs:
                self._stop(job, SERVER_STOPPED)
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in jobs:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
            job.handle._finished.wait(remaining)
        if self._pool is not None:
            self._pool.shutdown(wait=timeout is None, cancel_futures=True)


_PART_NAME = re.compile(r"\..*\.[0-9a-f]+\.part")


def _valid_timeout(timeout: object) -> bool:
    if timeout is None:
        return True
    return isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0


def _partial_file(record: dict) -> PartialFile | None:
    """The part file a file download left, if the download can go on from it."""
    local = record.get(_LOCAL) or {}
    resumable = Resumable.from_dict(local.get("resume"))
    directory, part_path, tag = local.get("directory"), local.get("part_path"), local.get("tag")
    if (
        record.get("kind", "file") != "file"
        or resumable is None
        or not (directory and part_path and tag)
        or not isinstance(local.get("requested_name"), str | None)
        or not _valid_timeout(local.get("timeout"))
    ):
        return None
    path = Path(part_path)
    if (
        # The directory was a real path when the download started; a symlink put on
        # the way since could lead anywhere.
        os.path.realpath(directory) != directory
        or path.parent != Path(directory)
        or not _PART_NAME.fullmatch(path.name)
        or not path.name.endswith(f".{tag}.part")
        or path.is_symlink()
        or not path.is_file()
    ):
        return None
    return PartialFile(path, record["filename"], resumable)


def _remove_leftovers(local: dict) -> None:
    """Delete a crashed download's part file: the recorded one, else one with its tag."""
    directory = local.get("directory")
    tag = local.get("tag")
    if not directory:
        return
    directory = Path(directory)
    candidates = []
    if local.get("part_path"):
        candidates.append(Path(local["part_path"]))
    if tag:
        # The part file may exist without being recorded if the crash came between
        # creating it and saving the record.
        candidates.extend(directory.glob(f".*.{tag}.part"))
    for path in candidates:
        # Only ever a part file directly in the recorded directory.
        if path.parent != directory or not _PART_NAME.fullmatch(path.name):
            continue
        if tag and not path.name.endswith(f".{tag}.part"):
            continue
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            if not path.is_symlink():
                path.unlink()
