"""The threads behind the import API and what happens when their work breaks."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ferry.chat.operations.lifecycle import DISK_FULL_REASON, disk_full
from ferry.chat.operations.records import OperationRecords
from ferry.kernel.statuses import ImportStep
from storage.staging import StagingArea

log = logging.getLogger("ferry.imports")

# How long import.clear waits for a running prepare or import to notice it was cleared.
JOB_WAIT_SECONDS = 60


class ImportWorkers:
    """One worker for prepares and imports, like Rocket.Chat's single current operation,
    and two beside it for pending files and avatars. Built idle; `start` creates the pools.

    `on_work_done` is called after each piece of work, which may allocate tens of MB of
    short-lived records.
    """

    def __init__(
        self,
        operations: OperationRecords,
        staging: StagingArea,
        on_work_done: Callable[[], None] | None = None,
    ):
        self._operations = operations
        self._staging = staging
        self._on_work_done = on_work_done
        self._worker: ThreadPoolExecutor | None = None
        self._side_work: ThreadPoolExecutor | None = None
        self._jobs: dict[str, Future] = {}
        self._stop = threading.Event()
        self._lock = threading.RLock()

    @property
    def stopping(self) -> bool:
        """The server is shutting down: work stops at its next check."""
        return self._stop.is_set()

    def start(self) -> None:
        with self._lock:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ferry-import")
            self._side_work = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ferry-pending")

    def submit(self, op_id: str, work, *args) -> None:
        """Queue `work(*args)` for the operation on the one prepare-and-import worker."""
        with self._lock:
            self._require_started()
            self._jobs = {key: job for key, job in self._jobs.items() if not job.done()}
            self._jobs[op_id] = self._worker.submit(self._guarded, op_id, work, *args)

    def submit_side(self, op_id: str, work, *args) -> None:
        """Run `work(*args)` for the operation beside the prepare-and-import worker."""
        self._require_started()
        self._side_work.submit(self._guarded, op_id, work, *args)

    def wait_for_jobs(self) -> None:
        """Wait for every queued prepare and import; their failures are theirs to record."""
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            with contextlib.suppress(Exception):
                job.result(timeout=JOB_WAIT_SECONDS)

    def shutdown(self) -> None:
        self._stop.set()
        for pool in (self._worker, self._side_work):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _require_started(self) -> None:
        if self._worker is None or self._side_work is None:
            raise RuntimeError("ImportService.startup() has not been called")

    def _guarded(self, op_id: str, work, *args) -> None:
        try:
            work(*args)
        except Exception as exc:  # a bug must fail the operation, not leave it running
            if disk_full(exc):
                log.error("import operation %s failed: %s", op_id, exc)
                # A failed operation never imports: its staging only holds the space
                # that the operation's status update and the next import need.
                with contextlib.suppress(OSError):
                    self._staging.delete(op_id)
                self._operations.update(op_id, status=ImportStep.FAILED, error=DISK_FULL_REASON)
            else:
                log.exception("import operation %s failed", op_id)
                self._operations.update(
                    op_id, status=ImportStep.FAILED, error=f"Internal error: {exc}"
                )
        finally:
            self._operations.drop_live_counts(op_id)
            if self._on_work_done is not None:
                try:
                    self._on_work_done()
                except Exception:
                    log.exception("on_work_done callback failed")
