"""The workers behind the import API: work on an operation is a job in storage that any
process working imports may claim, and what happens when that work breaks or stops.

A job runs in one process at a time, held by a lease its ticker renews. A process that
dies lets its lease run out and another claims the job: a prepare starts again from the
export file, an import goes on (it creates nothing twice), pending files fetch what is
still pending. A process that stops hands its jobs back, where storage is shared, for
another to go on with at once; where one process owns the storage they end failed with
a reason, and are found so after a restart. An operation in a busy step that nobody
holds and nobody may claim was cut off: it ends failed with a readable reason.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ferry.chat.operations.lifecycle import (
    DISK_FULL_REASON,
    IMPORTING,
    RESTART_REASON,
    WAITING,
    disk_full,
)
from ferry.chat.operations.records import OperationRecords
from ferry.downloads.claims import new_worker_id
from ferry.kernel.statuses import ImportStep
from storage.operations import JobClaim, OperationRepository
from storage.staging import StagingArea

log = logging.getLogger("ferry.imports")

PREPARE, IMPORT, PENDING_FILES, PENDING_AVATARS = (
    "prepare",
    "import",
    "pending-files",
    "pending-avatars",
)
# Prepares and imports run one at a time in a process, like Rocket.Chat's single
# current operation; pending files and avatars run beside them, two at a time.
MAIN_JOBS = (PREPARE, IMPORT)
SIDE_JOBS = (PENDING_FILES, PENDING_AVATARS)
SIDE_SLOTS = 2
# Steps in which somebody must be working on an operation.
BUSY = WAITING | IMPORTING

# How long import.clear waits for a running prepare or import to notice it was cleared.
JOB_WAIT_SECONDS = 60
# How long a process holds an operation without renewing; a process killed mid-import
# leaves it to others after this long.
LEASE_SECONDS = 10.0
# How often leases are renewed and queued jobs looked for.
TICK_SECONDS = 0.5
CLEAR_POLL_SECONDS = 0.1

JobWork = Callable[[str, dict], None]


class HandBack(Exception):
    """Raised by a job's work that stopped because this process stops (or no longer
    holds the operation): the job stays queued, for another worker to go on with."""


class ImportWorkers:
    """Built idle: `start` creates the pools, finds what was cut off, and starts the
    ticker that renews leases and, with `works_jobs`, claims queued jobs.

    `on_work_done` is called after each piece of work, which may allocate tens of MB of
    short-lived records.
    """

    def __init__(
        self,
        operations: OperationRecords,
        repository: OperationRepository,
        staging: StagingArea,
        on_work_done: Callable[[], None] | None = None,
        *,
        works_jobs: bool = True,
        worker_id: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        tick_seconds: float = TICK_SECONDS,
    ):
        self._operations = operations
        self._repository = repository
        self._staging = staging
        self._on_work_done = on_work_done
        self._works_jobs = works_jobs
        self.worker_id = worker_id or new_worker_id()
        self._lease_seconds = lease_seconds
        self._tick_seconds = tick_seconds
        self._work: dict[str, tuple[JobWork, bool]] = {}
        self._on_abandoned: Callable[[dict], None] | None = None
        self._main: ThreadPoolExecutor | None = None
        self._side: ThreadPoolExecutor | None = None
        self._running: dict[str, tuple[Future, bool]] = {}
        # Operations this process holds: its running jobs and work outside the queue.
        self._held: set[str] = set()
        self._lost: set[str] = set()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._ticker: threading.Thread | None = None
        self._lock = threading.RLock()

    # --- set-up --------------------------------------------------------------------

    def handle(self, job: str, work: JobWork, *, side: bool = False) -> None:
        """Run `work(operation_id, job_input)` for each claimed job named `job`."""
        self._work[job] = (work, side)

    def on_abandoned(self, callback: Callable[[dict], None]) -> None:
        """`callback(operation)` ends an operation found cut off."""
        self._on_abandoned = callback

    @property
    def stopping(self) -> bool:
        """The process is shutting down: work stops at its next check."""
        return self._stop.is_set()

    @property
    def hands_back(self) -> bool:
        """Whether work stopped by a shutdown stays queued for other processes."""
        return self._repository.shared

    def start(self) -> None:
        with self._lock:
            if self._ticker is not None:
                return
            self._main = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ferry-import")
            self._side = ThreadPoolExecutor(
                max_workers=SIDE_SLOTS, thread_name_prefix="ferry-pending"
            )
            self.reap()
            self._ticker = threading.Thread(
                target=self._tick_loop, name="ferry-import-jobs", daemon=True
            )
            self._ticker.start()

    def shutdown(self) -> None:
        self._stop.set()
        self._wake.set()
        for pool in (self._main, self._side):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        if self._ticker is not None:
            self._ticker.join(timeout=5)

    # --- work ------------------------------------------------------------------------

    def hold(self, op_id: str) -> None:
        """This process works on the operation outside the queue (its file arrives);
        held until a status that needs nobody is stored."""
        self._repository.hold(op_id, self.worker_id, self._lease_seconds)
        with self._lock:
            self._held.add(op_id)

    def queue(self, op_id: str, job: str, job_input: dict, **fields) -> dict | None:
        """Store `fields` and queue `job` for the operation, for whichever process
        claims it first (this one at once when it has room)."""
        # Let go of first, so that a renewal never takes the hand-over for a take-over.
        with self._lock:
            self._held.discard(op_id)
        operation = self._operations.queue(op_id, job, job_input, **fields)
        self._wake.set()
        return operation

    def run_here(self, op_id: str, work: Callable, *args) -> None:
        """Run `work(*args)` on this process's prepare-and-import worker, outside the
        queue (it needs what only this process has); the operation stays held by it."""
        with self._lock:
            self._require_started()
            self._held.add(op_id)
            future = self._main.submit(self._run_held, op_id, work, *args)
            self._running[op_id] = (future, False)

    def keeps(self, op_id: str) -> bool:
        """Whether work on the operation may go on here: the process is not stopping
        and no other worker took the operation over."""
        return not self._stop.is_set() and op_id not in self._lost

    def stopped(self, op_id: str, *, can_hand_back: bool = True) -> None:
        """Work on a still-valid operation stopped because this process stops, or lost
        it to another worker: raises HandBack where another worker may go on with it,
        else ends the operation failed with the restart reason."""
        if can_hand_back and (self.hands_back or not self.stopping):
            raise HandBack
        self._operations.finish(op_id, ImportStep.FAILED, error=RESTART_REASON)

    def status_stored(self, operation: dict) -> None:
        """Let go of an operation held outside the queue once it needs nobody."""
        op_id = operation["_id"]
        with self._lock:
            held_outside = op_id in self._held and op_id not in self._running
            if not held_outside or (operation["status"] in BUSY and operation.get("valid", True)):
                return
            self._held.discard(op_id)
        self._repository.let_go(op_id, self.worker_id, keep_job=False)

    def wait_for_jobs(self) -> None:
        """Wait until no prepare or import runs, here or on any other process."""
        with self._lock:
            local = [future for future, side in self._running.values() if not side]
        for future in local:
            with contextlib.suppress(Exception):
                future.result(timeout=JOB_WAIT_SECONDS)
        deadline = time.monotonic() + JOB_WAIT_SECONDS
        while self._repository.running_jobs(MAIN_JOBS) and time.monotonic() < deadline:
            time.sleep(CLEAR_POLL_SECONDS)

    def reap(self) -> None:
        """End every operation that was cut off: in a busy step, held by nobody, with no
        job queued."""
        if self._on_abandoned is None:
            return
        for operation in self._repository.abandoned(BUSY):
            with self._lock:
                if operation["_id"] in self._held:
                    continue
            try:
                self._on_abandoned(operation)
            except Exception:
                log.exception("could not end abandoned import operation %s", operation["_id"])

    # --- the ticker ----------------------------------------------------------------

    def _tick_loop(self) -> None:
        next_reap = time.monotonic() + self._lease_seconds
        while not self._stop.is_set():
            try:
                self._renew()
                if time.monotonic() >= next_reap:
                    self.reap()
                    next_reap = time.monotonic() + self._lease_seconds
                if self._works_jobs:
                    self._claim()
            except Exception:
                # A database that is briefly unreachable must not end the ticker.
                log.exception("import job ticker failed; trying again")
            self._wake.wait(self._tick_seconds)
            self._wake.clear()

    def _renew(self) -> None:
        with self._lock:
            held = set(self._held)
        if not held:
            return
        kept = self._repository.renew(self.worker_id, held, self._lease_seconds)
        with self._lock:
            # Still held here but no longer ours there (an operation queued meanwhile
            # was let go on purpose).
            lost = (held - kept) & self._held
            self._lost |= lost & set(self._running)
            self._held -= lost
        if lost:
            log.warning("import operations %s were taken over by another worker", sorted(lost))

    def _claim(self) -> None:
        while True:
            with self._lock:
                if self._stop.is_set():
                    return
                busy_sides = sum(1 for _, side in self._running.values() if side)
                main_free = not any(not side for _, side in self._running.values())
                jobs = (MAIN_JOBS if main_free else ()) + (
                    SIDE_JOBS if busy_sides < SIDE_SLOTS else ()
                )
            if not jobs:
                return
            claim = self._repository.claim_job(self.worker_id, self._lease_seconds, jobs)
            if claim is None:
                return
            op_id = claim.operation["_id"]
            if claim.previous_worker:
                log.warning(
                    "import operation %s: taking over %s from %s, which stopped renewing",
                    op_id,
                    claim.job,
                    claim.previous_worker,
                )
            with self._lock:
                side = claim.job in SIDE_JOBS
                pool = self._side if side else self._main
                try:
                    future = pool.submit(self._run_job, claim)
                except RuntimeError:  # the pools shut down since the check above
                    self._repository.let_go(op_id, self.worker_id, keep_job=True)
                    return
                self._held.add(op_id)
                self._lost.discard(op_id)
                self._running[op_id] = (future, side)

    # --- running -----------------------------------------------------------------

    def _run_job(self, claim: JobClaim) -> None:
        op_id = claim.operation["_id"]
        keep_job = False
        try:
            work, _ = self._work[claim.job]
            work(op_id, claim.job_input)
        except HandBack:
            keep_job = True
        except Exception as exc:
            if op_id not in self._lost:
                self._fail(op_id, exc)
        finally:
            self._repository.let_go(op_id, self.worker_id, keep_job=keep_job)
            self._finished(op_id)

    def _run_held(self, op_id: str, work: Callable, *args) -> None:
        try:
            work(*args)
        except Exception as exc:
            self._fail(op_id, exc)
        finally:
            self._repository.let_go(op_id, self.worker_id, keep_job=False)
            self._finished(op_id)

    def _finished(self, op_id: str) -> None:
        with self._lock:
            self._running.pop(op_id, None)
            self._held.discard(op_id)
            self._lost.discard(op_id)
        self._operations.drop_live_counts(op_id)
        self._wake.set()
        if self._on_work_done is not None:
            try:
                self._on_work_done()
            except Exception:
                log.exception("on_work_done callback failed")

    def _fail(self, op_id: str, failure: Exception) -> None:
        """A bug or a full disk fails the operation; it never leaves it running."""
        if disk_full(failure):
            log.error("import operation %s failed: %s", op_id, failure)
            # A failed operation never imports: its staging only holds the space that
            # the operation's status update and the next import need.
            with contextlib.suppress(OSError):
                self._staging.delete(op_id)
            self._operations.update(op_id, status=ImportStep.FAILED, error=DISK_FULL_REASON)
            return
        log.error("import operation %s failed", op_id, exc_info=failure)
        self._operations.update(op_id, status=ImportStep.FAILED, error=f"Internal error: {failure}")

    def _require_started(self) -> None:
        if self._main is None or self._side is None:
            raise RuntimeError("ImportService.startup() has not been called")
