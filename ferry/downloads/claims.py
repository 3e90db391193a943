"""Downloads as jobs: which queued downloads this process runs, and keeping hold of them.

Every queued or running download is a record any worker process may claim (see
storage.downloads and storage.postgres.downloads). A manager that works jobs claims
the oldest free one whenever it has a free transfer slot; a ticker renews the leases of
everything it holds in one storage call, passes on the cancels and pauses asked for on
other instances, and claims again. A download claimed from a worker that died, or left
by a crash, goes on from its part file by range when it can, and ends as
SERVER_STOPPED when bytes were received that cannot be trusted or found.

A part of the `DownloadManager`, apart so that each file stays readable.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ferry.downloads.control import STOP_WAIT_SECONDS
from ferry.downloads.jobs import Job
from ferry.downloads.pausing import HANDED_OVER
from ferry.downloads.policy import DOWNLOAD_CANCELLED, SERVER_STOPPED, FetchError
from ferry.downloads.priority import yield_to_requests
from ferry.downloads.records import STOPPED_MESSAGE, in_final_state, public_view
from ferry.downloads.recovery import partial_file, remove_leftovers
from ferry.kernel.statuses import DownloadStatus
from storage.downloads import LOCAL_KEY, Claim

log = logging.getLogger(__name__)

# How long a worker holds a job without renewing it; a worker killed mid-transfer
# leaves its jobs to others after this long.
LEASE_SECONDS = 10.0
# How often leases are renewed and stops asked for elsewhere are looked for: a cancel
# through another instance reaches the transfer within this long.
TICK_SECONDS = 0.5
# How often a stop asked of another worker looks whether it has been done.
STOP_POLL_SECONDS = 0.1


def new_worker_id() -> str:
    """This process among every worker of a database: host, process, and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class JobClaims:
    """Claiming, holding and handing back jobs, and the start-up and shutdown around them,
    over the manager's state; `DownloadManager` provides the rest."""

    _jobs: dict[str, Job]
    _queued: dict[str, Job]
    _lock: threading.RLock
    _stopping: bool
    _pool: ThreadPoolExecutor | None
    _worker_id: str
    _works_jobs: bool
    _lease_seconds: float
    _tick_seconds: float
    _resume_partials: bool
    _paused_ids: set[str]

    # --- claiming ------------------------------------------------------------------

    def _fill_slots(self) -> list[str]:
        """Claim queued downloads while this process has free transfer slots; returns the
        ids of those it closed instead of running (cut off, and not resumable)."""
        closed = []
        with self._claim_lock:
            while True:
                with self._lock:
                    if (
                        self._stopping
                        or not self._works_jobs
                        or len(self._jobs) >= self._max_concurrent
                    ):
                        break
                claim = self._repository.claim_next(self._worker_id, self._lease_seconds)
                if claim is None:
                    break
                if not self._take(claim):
                    closed.append(claim.record["id"])
        return closed

    def _take(self, claim: Claim) -> bool:
        """Run a claimed download; False when it was closed instead."""
        record = claim.record
        record_id = record["id"]
        with self._lock:
            job = self._queued.pop(record_id, None)
        if claim.stop_request is not None:
            self._stop_claimed(claim, job, claim.stop_request)
            return True
        partial = partial_file(record)
        # Bytes may have arrived that no part file vouches for: fetching it all again
        # would take a second full body from the remote.
        cut_off = claim.stale or record.get("status") == DownloadStatus.DOWNLOADING
        continuing = cut_off or claim.previous_worker is not None
        if cut_off and (partial is None or not self._resume_partials):
            self._close_cut_off(record, job)
            return False
        started_here = job is not None
        if job is None:
            if continuing:
                record = {**record, "status": DownloadStatus.STARTING}
                self._repository.save(record, wait=False)
            job = self._job_for(record, partial)
        if claim.previous_worker is not None:
            log.info("download %s taken over from worker %s", record_id, claim.previous_worker)
        with self._lock:
            if self._stopping:
                running = False
            else:
                self._jobs[record_id] = job
                self._submit(job)
                running = True
        if not running:
            if started_here and not self._repository.shared:
                # As shutdown closes the others started here: nobody else will run it.
                self._finish(job, error=FetchError(SERVER_STOPPED, STOPPED_MESSAGE))
            else:
                self._repository.release(record_id, self._worker_id)
            return True
        if continuing:
            self._tell("download_resumed", job.live())
        return True

    def _close_cut_off(self, record: dict, job: Job | None) -> None:
        remove_leftovers(record.get(LOCAL_KEY) or {})
        record = in_final_state(
            record,
            DownloadStatus.FAILED,
            error=SERVER_STOPPED,
            message=STOPPED_MESSAGE,
            total_bytes=None,
        )
        self._repository.save(record)
        self._repository.release(record["id"], self._worker_id)
        self._repository.prune_history(self._history_limit)
        if job is not None:
            job.handle.set_finished(FetchError(SERVER_STOPPED, STOPPED_MESSAGE))
        self._tell("download_finished", public_view(record))

    # --- holding -------------------------------------------------------------------

    def _wake(self) -> None:
        self._woken.set()

    def _tick_loop(self) -> None:
        renewed = 0.0
        while not self._ticker_stop.is_set():
            self._woken.wait(self._tick_seconds)
            self._woken.clear()
            if self._ticker_stop.is_set():
                return
            try:
                if time.monotonic() - renewed >= self._tick_seconds:
                    self._renew()
                    self._forget_queued_elsewhere()
                    renewed = time.monotonic()
                self._fill_slots()
            except Exception:  # the database away for a moment: the next tick tries again
                log.warning("could not renew or claim download jobs", exc_info=True)

    def _renew(self) -> None:
        """One storage call for every job held: renew, then act on stops asked for
        elsewhere, and let go of jobs another worker took over."""
        with self._lock:
            held = {record_id: job.current for record_id, job in self._jobs.items()}
        if not held:
            return
        kept = self._repository.renew(self._worker_id, held, self._lease_seconds)
        with self._lock:
            for record_id in held:
                job = self._jobs.get(record_id)
                if job is None or job.finished:
                    continue
                if record_id not in kept:
                    log.warning("download %s was taken over by another worker", record_id)
                    self._stop(job, HANDED_OVER)
                elif kept[record_id] is not None and job.stop_code is None:
                    self._stop(job, kept[record_id])

    def _forget_queued_elsewhere(self) -> None:
        """Drop the queued downloads started here that another worker has claimed."""
        with self._lock:
            waiting = list(self._queued)
        if not waiting:
            return
        with self._claim_lock:
            gone = self._repository.taken(waiting)
            with self._lock:
                for record_id in gone:
                    self._queued.pop(record_id, None)

    # --- stops asked for on any instance -------------------------------------------

    def _stop_anywhere(self, record_id: str, code: str) -> dict | None:
        """Stop (`code`: cancel or pause) a queued or running download this process does
        not run: claimed and closed here when nobody holds it, else asked of the worker
        that does, waiting until it has. The record it was stopped from, or None when it
        is unknown or not queued or running."""
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while True:
            record = self._repository.get(record_id)
            if record is None or record.get("status") not in (
                DownloadStatus.STARTING,
                DownloadStatus.DOWNLOADING,
            ):
                return None
            with self._claim_lock:
                claim = self._repository.claim(record_id, self._worker_id, self._lease_seconds)
                if claim is not None:
                    with self._lock:
                        job = self._queued.pop(record_id, None)
            if claim is not None:
                self._stop_claimed(claim, job, code)
                return record
            with self._lock:
                local = self._jobs.get(record_id)
                if local is not None:  # claimed by this process meanwhile
                    self._stop(local, code)
                    local.handle.wait_until_done(max(deadline - time.monotonic(), 0))
                    return record
            if self._repository.request_stop(record_id, code):
                self._await_stop(record_id, deadline)
                return record
            if time.monotonic() >= deadline:
                return record

    def _stop_claimed(self, claim: Claim, job: Job | None, code: str) -> None:
        """Cancel or pause a download just claimed, without running it."""
        if job is None:
            job = self._job_for(claim.record, partial_file(claim.record))
        job.stop_code = code
        job.current = claim.record.get("current_size") or 0
        if code == DOWNLOAD_CANCELLED:
            remove_leftovers(claim.record.get(LOCAL_KEY) or {})
        self._finish(job, error=FetchError(DOWNLOAD_CANCELLED, "the download was cancelled"))

    def _await_stop(self, record_id: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            record = self._repository.get(record_id)
            if record is None or record.get("status") not in (
                DownloadStatus.STARTING,
                DownloadStatus.DOWNLOADING,
            ):
                return
            time.sleep(STOP_POLL_SECONDS)

    # --- starting and stopping -----------------------------------------------------

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
        """Start the workers and the ticker, then claim what waits.

        A paused download stays paused. A download a crash or a dead worker cut off goes
        on from its part file (under its id) with `resume`, when its server took byte
        ranges and gave a validator; otherwise it is failed with SERVER_STOPPED and its
        part file deleted. Returns the ids of the records it closed so.
        """
        self._resume_partials = resume
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._max_concurrent,
                    thread_name_prefix="ferry-download",
                    initializer=yield_to_requests,
                )
        for record in self._repository.unfinished():
            if record.get("status") == DownloadStatus.PAUSED:
                with self._lock:
                    self._paused_ids.add(record["id"])
                still = self._still_paused(record)
                if still is not record:
                    self._repository.save(still)
        closed = self._fill_slots()
        with self._lock:
            if self._ticker is None and not self._stopping:
                self._ticker = threading.Thread(
                    target=self._tick_loop, name="ferry-download-jobs", daemon=True
                )
                self._ticker.start()
        return closed

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop every download this process runs (a resumable one is handed back for the
        next worker, the others recorded as SERVER_STOPPED) and wait for the workers.

        Downloads started here and still queued stay queued for other workers when the
        storage is shared; with one owner they end as SERVER_STOPPED too.
        """
        with self._lock:
            self._stopping = True
            jobs = list(self._jobs.values())
            for job in jobs:
                self._stop(job, SERVER_STOPPED)
            queued = list(self._queued)
        if not self._repository.shared:
            for record_id in queued:
                claim = self._repository.claim(record_id, self._worker_id, self._lease_seconds)
                with self._lock:
                    job = self._queued.pop(record_id, None)
                if claim is not None and job is not None:
                    self._finish(job, error=FetchError(SERVER_STOPPED, STOPPED_MESSAGE))
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in jobs:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
            job.handle.wait_until_done(remaining)
        self._ticker_stop.set()
        self._wake()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=timeout is None, cancel_futures=True)
