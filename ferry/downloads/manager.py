"""Runs downloads on a bounded pool of threads and keeps their records.

A download is a job in storage: `start` records it queued, and whichever process works
jobs claims it (see claims.py), this one included unless it serves the API only.

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
from ferry.downloads.claims import LEASE_SECONDS, TICK_SECONDS, JobClaims, new_worker_id
from ferry.downloads.control import DownloadControl
from ferry.downloads.fetch import fetch_to_directory
from ferry.downloads.fetch_types import FetchResult, ResponseInfo, Resumable, TransferTuning
from ferry.downloads.jobs import DownloadHandle, Job
from ferry.downloads.pausing import (
    HANDED_OVER,
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


class DownloadManager(JobClaims, DownloadControl):
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
        works_jobs: bool = True,
        worker_id: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        tick_seconds: float = TICK_SECONDS,
    ):
        """Builds the manager; `startup` starts its workers.

        With `works_jobs` off it records file downloads for other workers to claim and
        runs only its imports' downloads (which always run where they were started).
        It holds each job it runs for `lease_seconds`, renewed every `tick_seconds`.

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
        # Jobs this process holds (claimed), running or waiting for a slot of their host.
        self._jobs: dict[str, Job] = {}
        # Downloads started here that wait to be claimed, so that the process claiming
        # them (most often this one) keeps their handle and callbacks.
        self._queued: dict[str, Job] = {}
        # Paused downloads this process knows of, for its figures.
        self._paused_ids: set[str] = set()
        self._lock = threading.RLock()
        # Held while claiming, so a job is never claimed twice by this process.
        self._claim_lock = threading.Lock()
        self._works_jobs = works_jobs
        self._worker_id = worker_id or new_worker_id()
        self._lease_seconds = lease_seconds
        self._tick_seconds = tick_seconds
        self._resume_partials = False
        self._ticker: threading.Thread | None = None
        self._ticker_stop = threading.Event()
        self._woken = threading.Event()
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

    @property
    def worker_id(self) -> str:
        return self._worker_id

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
        durable: bool = True,
    ) -> DownloadHandle:
        """Validate `url` (unless it is a `CheckedUrl` already) and queue its download
        into `directory`, recorded as started by `owner` (the user who asked for it).
        With `checksum`, the file is published only if it matches. With `durable`
        false the record reaches the disk with the next save that waits or
        `flush_records`: a batch records its starts and flushes them once.

        A file download is queued for any worker to claim (the handle hears of its end
        when this process runs it); an import's download runs here.

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
        waiting = self._repository.count_runnable()
        runs_here = kind != DownloadKind.FILE
        with self._lock:
            if self._pool is None:
                raise RuntimeError("DownloadManager.startup() has not been called")
            if self._stopping:
                raise stopped
            self._admit(waiting)
            if self._works_jobs and not runs_here:
                self._queued[record_id] = job
        try:
            self._repository.save(record, wait=durable)
        except BaseException:
            with self._lock:
                self._admitting -= 1
                self._queued.pop(record_id, None)
            raise
        with self._lock:
            self._admitting -= 1
        if runs_here:
            # An import waits on its download's handle: it runs here, whoever works jobs.
            with self._claim_lock:
                claimed = self._repository.claim(record_id, self._worker_id, self._lease_seconds)
            with self._lock:
                started = claimed is not None and not self._stopping
                if started:
                    self._jobs[record_id] = job
                    self._submit(job)
            if not started:
                # Shutdown began while the record was written: close it, as shutdown would.
                self._finish(job, error=FetchError(SERVER_STOPPED, STOPPED_MESSAGE))
                raise stopped
        self._tell("download_started", job.live())
        if not runs_here:
            self._fill_slots()
        return handle

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

    def _admit(self, waiting: int) -> None:
        """Take a place in the queue for a start, with `waiting` downloads queued or
        running in storage. Call with the lock held.

        Raises FetchError(QUEUE_FULL) when every place is taken.
        """
        if self._max_queued is not None:
            places = self._max_concurrent + self._max_queued
            if waiting + self._admitting >= places:
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
                    on_resumable=lambda resumable: self._resumable(job, resumable),
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

    def _resumable(self, job: Job, resumable: Resumable) -> None:
        """How the part file resumes changed mid-transfer (segments read in order)."""
        record = {**job.record, LOCAL_KEY: {**job.record[LOCAL_KEY], "resume": resumable.to_dict()}}
        self._repository.save(record, wait=False)
        with self._lock:
            job.record = record

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
        handed_over = job.stop_code == HANDED_OVER
        # Until the save returns, readers see the job as it was; then the saved record.
        try:
            if not handed_over:
                self._repository.save(record)
                self._repository.release(record["id"], self._worker_id)
                self._repository.prune_history(self._history_limit)
        finally:
            with self._lock:
                if not handed_over:
                    job.record = record
                self._jobs.pop(record["id"], None)
                if record["status"] == DownloadStatus.PAUSED:
                    self._paused_ids.add(record["id"])
                self._hand_on_slot(job)
                self._bytes_finished += result.size if result is not None else max(job.current, 0)
                idle = not self._jobs
            job.handle.set_finished(error)
            # A slot is free: claim the next job.
            self._wake()
        if handed_over or record["status"] not in FINAL_DOWNLOAD_STATUSES:
            # Paused, kept for the next start, or run on by another worker: not finished,
            # so no finish is told.
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

    def flush_records(self) -> None:
        """Make every record saved so far durable (see `start`'s `durable`)."""
        self._repository.flush()

    def get(self, record_id: str) -> dict | None:
        with self._lock:
            job = self._jobs.get(record_id) or self._queued.get(record_id)
            if job is not None:
                return job.live()
        record = self._repository.get(record_id)
        return _stored_view(record) if record is not None else None

    def active(self, directory: str | None = None) -> list[dict]:
        """Downloads queued, running or paused on any worker, oldest first; only those
        into `directory` if given. Those running here show their live progress."""
        with self._lock:
            jobs = list(self._jobs.values())
        records = [job.live() for job in jobs]
        running_here = {record["id"] for record in records}
        records += [
            _stored_view(record)
            for record in self._repository.unfinished()
            if record["id"] not in running_here
        ]
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
            paused = len(self._paused_ids)
            queued = len(self._queued)
        downloading = sum(1 for job in jobs if job.record["status"] == DownloadStatus.DOWNLOADING)
        return {
            DownloadStatus.STARTING: len(jobs) - downloading + queued,
            DownloadStatus.DOWNLOADING: downloading,
            DownloadStatus.PAUSED: paused,
            "bytes": received,
        }

    def history(self, limit: int | None = None) -> list[dict]:
        return [public_view(r) for r in self._repository.history(limit)]


def _stored_view(record: dict) -> dict:
    """A stored record as clients see it; one running on another worker shows the
    bytes that worker last reported, and the percentage they make."""
    view = public_view(record)
    if view.get("expected_size") is not None and view["status"] == DownloadStatus.DOWNLOADING:
        view["progress_percentage"] = percentage(view["current_size"], view["expected_size"])
    return view
