"""Import operation records (Rocket.Chat's `rocketchat_import` collection), and the work
on them as jobs.

Work on an operation (prepare, import, pending files and avatars) is a job any worker
may claim, held by a lease its worker renews, as downloads are (storage.downloads): a
lease that runs out lets another worker take the job over. A worker may also hold an
operation with no job to hand on (an upload arriving, a download of the export), so
that others can tell work that stopped from work in progress. Here one process owns
the records, so jobs and leases live in its memory and end with it: what was queued or
held when it stopped is found abandoned by the next one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from itertools import count

from tinydb.table import Document

from storage.store import Store, detached


@dataclass(frozen=True)
class JobClaim:
    """A job a worker now holds: what to do (`job`, `job_input`) to which operation.
    `previous_worker` held it before and let its lease run out (it died)."""

    operation: dict
    job: str
    job_input: dict
    previous_worker: str | None = None


@dataclass
class _Lease:
    worker_id: str
    until: float  # monotonic


@dataclass(frozen=True)
class _Job:
    job: str
    job_input: dict
    order: int


class OperationRepository:
    """Operations live in `imports.json`, table `operations`, keyed by `_id`.

    Few and small: one record per import, rewritten on state changes and on throttled
    progress updates, never per record imported.
    """

    # Only this process works these records.
    shared = False

    def __init__(self, store: Store):
        self._store = store
        self._jobs: dict[str, _Job] = {}
        self._leases: dict[str, _Lease] = {}
        self._jobs_lock = threading.Lock()
        self._order = count()

    @property
    def _operations(self):
        return self._store.db("imports").table("operations")

    def insert(self, operation: dict) -> None:
        with self._store.lock:
            self._operations.insert(Document(dict(operation), doc_id=operation["_id"]))

    def get(self, operation_id: str) -> dict | None:
        with self._store.lock:
            return detached(self._operations.get(doc_id=operation_id))

    def update(self, operation_id: str, fields: dict) -> dict | None:
        """Replace top-level fields; returns the updated operation, None if unknown."""
        with self._store.lock:
            if self._operations.get(doc_id=operation_id) is None:
                return None
            self._operations.update(fields, doc_ids=[operation_id])
            return detached(self._operations.get(doc_id=operation_id))

    def latest(self) -> dict | None:
        """The current operation: the newest by creation time (`ts`)."""
        with self._store.lock:
            operations = self._operations.all()
            if not operations:
                return None
            return detached(max(operations, key=lambda op: (op["ts"], op["_id"])))

    def recent(self, limit: int) -> list[dict]:
        """The `limit` most recently updated operations, newest first."""
        with self._store.lock:
            ordered = sorted(self._operations.all(), key=lambda op: op["_updatedAt"], reverse=True)
            return [detached(op) for op in ordered[:limit]]

    def all(self) -> list[dict]:
        with self._store.lock:
            return [detached(op) for op in self._operations.all()]

    def invalidate_all(self, updated_at: str) -> list[str]:
        """Marks every still-valid operation invalid in one write; returns their ids."""
        with self._store.lock:
            valid = [op.doc_id for op in self._operations.all() if op.get("valid", True)]
            if valid:
                self._operations.update({"valid": False, "_updatedAt": updated_at}, doc_ids=valid)
            return valid

    # --- jobs ----------------------------------------------------------------------

    def queue_job(self, operation_id: str, job: str, job_input: dict, fields: dict) -> dict | None:
        """Replace `fields` and make `job` on the operation claimable by any worker, in
        one step; whoever held the operation lets go of it. None if it is unknown."""
        with self._jobs_lock:
            operation = self.update(operation_id, fields)
            if operation is not None:
                self._jobs[operation_id] = _Job(job, dict(job_input), next(self._order))
                self._leases.pop(operation_id, None)
        return operation

    def hold(self, operation_id: str, worker_id: str, lease_seconds: float) -> None:
        """`worker_id` works on the operation outside the queue, for `lease_seconds`."""
        with self._jobs_lock:
            self._leases[operation_id] = _Lease(worker_id, time.monotonic() + lease_seconds)

    def claim_job(
        self, worker_id: str, lease_seconds: float, jobs: Collection[str]
    ) -> JobClaim | None:
        """The oldest queued job of the kinds in `jobs` that no live lease holds, now held
        by `worker_id` for `lease_seconds`."""
        with self._jobs_lock:
            now = time.monotonic()
            for operation_id, queued in sorted(self._jobs.items(), key=lambda i: i[1].order):
                lease = self._leases.get(operation_id)
                if queued.job not in jobs or (lease is not None and lease.until >= now):
                    continue
                operation = self.get(operation_id)
                if operation is None:
                    del self._jobs[operation_id]
                    continue
                self._leases[operation_id] = _Lease(worker_id, now + lease_seconds)
                previous = lease.worker_id if lease is not None else None
                return JobClaim(operation, queued.job, dict(queued.job_input), previous)
        return None

    def renew(self, worker_id: str, operation_ids: Collection[str], lease_seconds: float) -> set:
        """Extend the leases `worker_id` holds on these operations; returns the ids it
        still holds (one missing was taken over by another worker)."""
        with self._jobs_lock:
            until = time.monotonic() + lease_seconds
            held = set()
            for operation_id in operation_ids:
                lease = self._leases.get(operation_id)
                if lease is not None and lease.worker_id == worker_id:
                    lease.until = until
                    held.add(operation_id)
            return held

    def let_go(self, operation_id: str, worker_id: str, *, keep_job: bool) -> None:
        """`worker_id` stops holding the operation: its job, when `keep_job`, is claimable
        again at once, else it is done and dropped. Nothing happens when another
        worker holds it now."""
        with self._jobs_lock:
            lease = self._leases.get(operation_id)
            if lease is None or lease.worker_id != worker_id:
                return
            del self._leases[operation_id]
            if not keep_job:
                self._jobs.pop(operation_id, None)

    def running_jobs(self, jobs: Collection[str]) -> int:
        """Jobs of the kinds in `jobs` that a worker holds now."""
        with self._jobs_lock:
            now = time.monotonic()
            return sum(
                1
                for operation_id, queued in self._jobs.items()
                if queued.job in jobs
                and (lease := self._leases.get(operation_id)) is not None
                and lease.until >= now
            )

    def abandoned(self, statuses: Collection[str]) -> list[dict]:
        """Valid operations in one of `statuses` that nobody works on: no job queued and
        no live lease (their worker stopped or died)."""
        with self._jobs_lock:
            now = time.monotonic()
            busy = {
                operation_id for operation_id, lease in self._leases.items() if lease.until >= now
            } | set(self._jobs)
        return [
            operation
            for operation in self.all()
            if operation.get("valid", True)
            and operation["status"] in statuses
            and operation["_id"] not in busy
        ]
