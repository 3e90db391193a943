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

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from ferry.downloads import names
from ferry.downloads.bandwidth import HostSlots
from ferry.downloads.checksums import Checksum
from ferry.downloads.control import DownloadControl
from ferry.downloads.fetch import fetch_to_directory
from ferry.downloads.fetch_types import FetchResult, PartialFile, ResponseInfo, TransferTuning
from ferry.downloads.jobs import DownloadHandle, Job
from ferry.downloads.pausing import (
    PAUSING,
    held_by_stop,
    paused_record,
)
from ferry.downloads.policy import (
    DOWNLOAD_CANCELLED,
    NETWORK_ERROR,
    QUEUE_FULL,
    SERVER_STOPPED,
    CheckedUrl,
    FetchError,
    FetchPolicy,
)
from ferry.downloads.records import (
    COMPLETED_MESSAGE,
    STOPPED_MESSAGE,
    Owner,
    in_final_state,
    named,
    now,
    owner_fields,
    part_tag,
    percentage,
    public_view,
)
from ferry.downloads.recovery import partial_file, remove_leftovers
from ferry.events import download_event_type
from ferry.kernel.ids import download_id
from ferry.kernel.statuses import (
    FINAL_DOWNLOAD_STATUSES,
    DownloadKind,
    DownloadStatus,
    EventType,
)
from storage.downloads import LOCAL_KEY, DownloadRepository

log = logging.getLogger(__name__)


class DownloadListener(Protocol):
    """Told of each state change, after it is stored (metrics, logs). Called outside the
    manager's lock; it must be quick and must not raise."""

    def download_started(self, record: dict) -> None: ...

    def download_answered(self, record: dict) -> None: ...

    def download_resumed(self, record: dict) -> None: ...

    def download_finished(self, record: dict) -> None: ...


class DownloadManager(DownloadControl):
    def __init__(
        self,
        repository: DownloadRepository,
        policy: FetchPolicy,
        *,
        max_concurrent: int = 3,
        max_queued: int | None = None,
        history_limit: int = 1000,
        listener: DownloadListener | None = None,
        on_idle: Callable[[], None] | None = None,
        tuning: TransferTuning = TransferTuning(),
        on_event: Callable[[EventType, dict], None] | None = None,
        max_per_host: int | None = None,
    ):
        """Builds the manager; `startup` starts its workers.

        At most `max_queued` downloads wait (as `starting`) beyond the `max_concurrent`
        that run; None lets the queue grow without bound. `on_idle` is called each time
        the last running download has ended. `tuning` shapes every transfer and says when
        a resumable download's record is flushed. `on_event` hears each recorded status
        change as its live event, and the progress of each transfer (at most twice a
        second), with the download as `get` shows it; it must be quick. At most
        `max_per_host` transfers from one host run at once (None: no such limit); the
        others wait as `starting` without taking a worker.
        """
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        if max_queued is not None and max_queued < 0:
            raise ValueError("max_queued must be at least 0")
        self._repository = repository
        self._policy = policy
        self._history_limit = history_limit
        self._jobs: dict[str, Job] = {}
        # Paused downloads by id: their records, with no transfer and no worker.
        self._paused: dict[str, dict] = {}
        self._lock = threading.RLock()
        self._stopping = False
        self._listener = listener
        # Bytes received by finished downloads; those in flight are added when asked.
        self._bytes_finished = 0
        self._max_concurrent = max_concurrent
        self._max_queued = max_queued
        # Starts that passed the queue check and are saving their record, not yet in _jobs.
        self._admitting = 0
        self._on_idle = on_idle
        self._pool: ThreadPoolExecutor | None = None
        self._tuning = tuning
        self._on_event = on_event
        self._hosts = HostSlots(max_per_host) if max_per_host is not None else None

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
        kind: str = DownloadKind.FILE,
        on_finished: Callable[[dict], None] | None = None,
        owner: Owner | None = None,
        checksum: Checksum | None = None,
    ) -> DownloadHandle:
        """Validate `url` (unless it is a `CheckedUrl` already) and queue its download
        into `directory`, recorded as started by `owner` (the user who asked for it).
        With `checksum`, the file is published only if it matches.

        Raises FetchError (INVALID_URL, DOMAIN_BLOCKED, or QUEUE_FULL when
        `max_queued` downloads already wait) before anything is recorded, and
        FetchError(SERVER_STOPPED) once shutdown has begun.
        """
        policy = self._policy
        if timeout is not None:
            if timeout <= 0:
                raise ValueError("timeout must be positive")
            policy = dataclasses.replace(policy, timeout=float(timeout))
        target = url if isinstance(url, CheckedUrl) else policy.check_url(url)
        name = names.choose_name(filename, url_path=target.path)
        record_id = download_id()
        record = {
            "id": record_id,
            "kind": kind,
            "directory": display_directory,
            "url": target.given or target.url,
            "status": DownloadStatus.STARTING,
            "current_size": 0,
            "expected_size": None,
            "progress_percentage": None,
            "start_time": now(),
            "checksum": str(checksum) if checksum is not None else None,
            "sha256": None,
            "attempts": 0,
            **owner_fields(owner),
            LOCAL_KEY: {
                "directory": str(directory),
                "part_path": None,
                "tag": part_tag(record_id),
                # What a resume after a crash must ask for again.
                "requested_name": filename,
                "timeout": timeout,
            },
        }
        record = named(record, name)
        handle = DownloadHandle(record_id, self.get)
        job = Job(
            record,
            Path(directory),
            policy,
            filename,
            handle,
            on_finished,
            tuning=self._tuning,
            target=target,
            checksum=checksum,
        )
        stopped = FetchError(SERVER_STOPPED, "the server is shutting down")
        with self._lock:
            if self._pool is None:
                raise RuntimeError("DownloadManager.startup() has not been called")
            if self._stopping:
                raise stopped
            self._admit()
        try:
            self._repository.save(record)
        except BaseException:
            with self._lock:
                self._admitting -= 1
            raise
        with self._lock:
            self._admitting -= 1
            if not self._stopping:
                self._jobs[record_id] = job
                self._submit(job)
                started = True
            else:
                started = False
        if started:
            self._tell("download_started", job.live())
            return handle
        # Shutdown began while the record was written: close it, as shutdown would have.
        self._finish(job, error=FetchError(SERVER_STOPPED, STOPPED_MESSAGE))
        raise stopped

    def _submit(self, job: Job) -> None:
        """Hand `job` to the workers, or let it wait for a slot of its host. Call with
        the lock held."""
        if self._hosts is not None:
            if not self._hosts.admit(job.host, job):
                return
            job.holds_slot = True
        job.future = self._pool.submit(self._run, job)

    def _hand_on_slot(self, job: Job) -> None:
        """`job` ended: the next download waiting for its host takes its slot. Call with
        the lock held."""
        if self._hosts is None or not job.holds_slot:
            return
        job.holds_slot = False
        # Once shutdown has begun the waiting stay waiting; shutdown stops them there.
        waiting = self._hosts.release(job.host, hand_on=not self._stopping)
        if waiting is not None:
            waiting.holds_slot = True
            waiting.future = self._pool.submit(self._run, waiting)

    def _admit(self) -> None:
        """Take a place in the queue for a start. Call with the lock held.

        Raises FetchError(QUEUE_FULL) when every place is taken.
        """
        if self._max_queued is not None:
            places = self._max_concurrent + self._max_queued
            if len(self._jobs) + self._admitting >= places:
                raise FetchError(
                    QUEUE_FULL,
                    f"{self._max_queued} downloads already wait for one of the "
                    f"{self._max_concurrent} transfer slots; try again later",
                )
        self._admitting += 1

    def _tell(self, what: str, record: dict) -> None:
        """The one place a recorded status change is told: to the listener, and as the
        live event its status maps to."""
        if self._listener is not None:
            try:
                getattr(self._listener, what)(record)
            except Exception:
                log.exception("download listener failed on %s", what)
        event = download_event_type(record, resumed=what == "download_resumed")
        if event is not None:
            self._publish(event, record)

    def _publish(self, event: EventType, record: dict) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event, record)
        except Exception:
            log.exception("download event %s failed", event)

    def _progressed(self, job: Job) -> None:
        self._publish(EventType.DOWNLOAD_PROGRESS, job.live())

    # --- the worker ----------------------------------------------------------------

    def _run(self, job: Job) -> None:
        if job.finished:
            return
        while True:
            job.attempts += 1
            try:
                result = fetch_to_directory(
                    job.target or job.record["url"],
                    job.directory,
                    policy=job.policy,
                    filename=job.requested_name,
                    on_headers=lambda info: self._headers(job, info),
                    on_progress=job.progress,
                    cancel=job.cancel,
                    part_tag=job.record[LOCAL_KEY]["tag"],
                    partial=job.partial,
                    tuning=self._tuning,
                    checksum=job.checksum,
                    keep_part=lambda error: held_by_stop(job, error),
                )
            except FetchError as exc:
                error = self._after_failure(job, exc)
                if error is None:
                    continue
                self._finish(job, error=error)
            except Exception as exc:  # a bug must still end the record, not leave it running
                log.exception("download %s crashed", job.record["id"])
                self._finish(job, error=FetchError(NETWORK_ERROR, f"unexpected error: {exc}"))
            else:
                self._finish(job, result=result)
            return

    def _after_failure(self, job: Job, error: FetchError) -> FetchError | None:
        """None when `job` is to be tried again: a transient failure with tries left, once
        the backoff (or the server's Retry-After) has passed; the next try goes on from
        the part file when the remote allows. Else the error the download ends with."""
        if not error.transient or job.attempts > job.tuning.retries or job.cancel.is_set():
            return error
        if error.retry_after is not None:
            delay = error.retry_after
        else:
            backoff = job.tuning.retry_backoff * 2 ** (job.attempts - 1)
            # Jitter, so that downloads failing together do not come back together.
            delay = min(backoff, job.tuning.retry_backoff_max) * random.uniform(0.5, 1.0)
        log.info(
            "download %s: %s; try %d of %d in %.1f s",
            job.record["id"],
            error.message,
            job.attempts + 1,
            job.tuning.retries + 1,
            delay,
        )
        if job.cancel.wait(delay):
            if job.stop_code == DOWNLOAD_CANCELLED:
                remove_leftovers(job.record.get(LOCAL_KEY) or {})
            return FetchError(DOWNLOAD_CANCELLED, "the download was cancelled")
        job.partial = partial_file(job.record)
        return None

    def _headers(self, job: Job, info: ResponseInfo) -> None:
        # Only this job's worker changes job.record before it finishes.
        record = named(job.record, info.filename)
        record.update(
            status=DownloadStatus.DOWNLOADING,
            expected_size=info.content_length,
            progress_percentage=percentage(0, info.content_length),
        )
        record[LOCAL_KEY] = {
            **record[LOCAL_KEY],
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
            job.sample_time = job.answered_time = job.progress_told = time.monotonic()
            if info.resumable is not None:
                job.checkpoint = self._checkpoint
            if self._on_event is not None:
                job.on_progress = self._progressed
        job.handle.set_answered()
        self._tell("download_answered", job.live())

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
        self, job: Job, *, result: FetchResult | None = None, error: FetchError | None = None
    ) -> None:
        with self._lock:
            if job.finished:
                return
            job.finished = True
            stopped_by_us = error is not None and error.code == DOWNLOAD_CANCELLED
            pausing = stopped_by_us and job.stop_code == PAUSING
            planned_stop = stopped_by_us and job.stop_code == SERVER_STOPPED
            partial = partial_file(job.record) if pausing or planned_stop else None
            if planned_stop and partial is None:
                error = FetchError(SERVER_STOPPED, STOPPED_MESSAGE)
            if result is None and pausing:
                record = paused_record(job.record, job.current, partial)
            elif result is None and partial is not None:
                # A planned stop keeps what a crash would keep: the next start resumes it.
                record = {**job.record, "current_size": job.current}
            elif result is not None:
                record = named(job.record, result.filename)
                record.update(
                    current_size=result.size, progress_percentage=100.0, sha256=result.sha256
                )
                record = in_final_state(
                    record,
                    DownloadStatus.COMPLETED,
                    error=None,
                    message=COMPLETED_MESSAGE,
                    total_bytes=result.size,
                )
            else:
                record = dict(job.record)
                record.update(
                    current_size=job.current,
                    progress_percentage=percentage(job.current, record["expected_size"]),
                )
                status = (
                    DownloadStatus.CANCELLED
                    if error.code == DOWNLOAD_CANCELLED
                    else DownloadStatus.FAILED
                )
                record = in_final_state(
                    record, status, error=error.code, message=error.message, total_bytes=None
                )
            record["attempts"] = job.attempts
        # Until the save returns, readers see the job as it was; then the saved record.
        try:
            self._repository.save(record)
            self._repository.prune_history(self._history_limit)
        finally:
            with self._lock:
                job.record = record
                self._jobs.pop(record["id"], None)
                if record["status"] == DownloadStatus.PAUSED:
                    self._paused[record["id"]] = record
                self._hand_on_slot(job)
                self._bytes_finished += result.size if result is not None else max(job.current, 0)
                idle = not self._jobs
            job.handle.set_finished(error)
        if record["status"] not in FINAL_DOWNLOAD_STATUSES:
            # Paused, or kept for the next start: not finished, so no finish is told.
            if record["status"] == DownloadStatus.PAUSED:
                self._publish(EventType.DOWNLOAD_PAUSED, public_view(record))
            self._after_idle(idle)
            return
        self._tell("download_finished", public_view(record))
        if job.on_finished is not None:
            try:
                job.on_finished(public_view(record))
            except Exception:
                log.exception("on_finished callback for download %s failed", record["id"])
        self._after_idle(idle)

    def _after_idle(self, idle: bool) -> None:
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
            paused = self._paused.get(record_id)
            if paused is not None:
                return public_view(paused)
        record = self._repository.get(record_id)
        return public_view(record) if record is not None else None

    def active(self, directory: str | None = None) -> list[dict]:
        """Downloads queued or running, oldest first; only those into `directory` if given."""
        with self._lock:
            jobs = list(self._jobs.values())
            paused = list(self._paused.values())
        records = [job.live() for job in jobs] + [public_view(r) for r in paused]
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
            paused = len(self._paused)
        downloading = sum(1 for job in jobs if job.record["status"] == DownloadStatus.DOWNLOADING)
        return {
            DownloadStatus.STARTING: len(jobs) - downloading,
            DownloadStatus.DOWNLOADING: downloading,
            DownloadStatus.PAUSED: paused,
            "bytes": received,
        }

    def history(self, limit: int | None = None) -> list[dict]:
        return [public_view(r) for r in self._repository.history(limit)]

    # --- stopping ------------------------------------------------------------------

    def _stop(self, job: Job, code: str) -> None:
        job.stop_code = job.stop_code or code
        job.cancel.set()
        if self._hosts is not None and self._hosts.withdraw(job.host, job):
            # It waited for a slot of its host, so no thread will finish it.
            self._finish(job, error=FetchError(DOWNLOAD_CANCELLED, "the download was cancelled"))
        elif job.future is not None and job.future.cancel():
            # It never started, so no thread will finish it.
            self._finish(job, error=FetchError(DOWNLOAD_CANCELLED, "the download was cancelled"))

    def startup(self, *, resume: bool = False) -> list[str]:
        """Start the workers, then deal with what a previous run left unfinished.

        A paused download stays paused. With `resume`, a file download whose server took
        byte ranges and gave a validator goes on from its part file (its record keeps its
        id); every other one is failed with SERVER_STOPPED and its part file deleted.
        Returns the ids of the records it closed.
        """
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._max_concurrent, thread_name_prefix="ferry-download"
                )
        closed = []
        for record in self._repository.unfinished():
            with self._lock:
                if record["id"] in self._jobs or record["id"] in self._paused:
                    continue
                if record.get("status") == DownloadStatus.PAUSED:
                    self._paused[record["id"]] = self._still_paused(record)
                    continue
            partial = partial_file(record) if resume else None
            if partial is not None and self._resume(record, partial):
                continue
            remove_leftovers(record.get(LOCAL_KEY) or {})
            record = in_final_state(
                record,
                DownloadStatus.FAILED,
                error=SERVER_STOPPED,
                message=STOPPED_MESSAGE,
                total_bytes=None,
            )
            self._repository.save(record)
            closed.append(record["id"])
            self._tell("download_finished", public_view(record))
        if closed:
            self._repository.prune_history(self._history_limit)
        return closed

    def _resume(self, record: dict, partial: PartialFile) -> bool:
        """Queue the rest of a download a crash or a planned stop cut short; False once
        shutdown has begun."""
        record = {**record, "status": DownloadStatus.STARTING}
        job = self._job_for(record, partial)
        self._repository.save(record, wait=False)
        with self._lock:
            if self._stopping:
                return False
            self._jobs[record["id"]] = job
            self._submit(job)
        self._tell("download_resumed", job.live())
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
            job.handle.wait_until_done(remaining)
        if self._pool is not None:
            self._pool.shutdown(wait=timeout is None, cancel_futures=True)
