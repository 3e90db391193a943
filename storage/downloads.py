"""Download records in `downloads.json`, one document per download, keyed by its id.

Only state changes are written here (created, headers accepted, finished); progress
stays in memory, because every TinyDB write rewrites the whole file.

Writes use the store's group commit: a save changes the records in memory under the
store's lock, then waits, outside it, until a disk write covering its change is done,
so readers never wait for an fsync and downloads finishing together share one. Until
a change is on disk, readers are shown the record as it was before it (or nothing, for
a new one): nothing is ever shown that a crash could take back.

A queued or running download is a job, claimed and held by a lease as on PostgreSQL
(storage.postgres.downloads), so the domain has one way to run downloads. Here one
process owns the files, so leases live in its memory: a queued or running record it
finds on disk and did not write itself was left by a crash, and is claimed as `stale`.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tinydb.table import Document

from ferry.kernel.statuses import ACTIVE_DOWNLOAD_STATUSES, DownloadKind, DownloadStatus
from storage.store import Store, detached

# The key of a record's local bookkeeping: fields kept for recovery (where the part
# file is, how to resume it, when the download ended) and never shown to clients.
LOCAL_KEY = "_local"
_DB = "downloads"
_RUNNABLE = frozenset({DownloadStatus.STARTING, DownloadStatus.DOWNLOADING})


def _is_file(record: dict) -> bool:
    return record.get("kind", DownloadKind.FILE) == DownloadKind.FILE


def _queue_place(record: dict) -> tuple | None:
    """Where a record stands in the queue (oldest first), or None when it is not queued
    or running."""
    if record.get("status") not in _RUNNABLE:
        return None
    return (record.get("start_time") or 0, record["id"])


@dataclass(frozen=True)
class Claim:
    """A download a worker now holds. `previous_worker` held it before and let its lease
    run out (it died); `stale` says the record may lag behind what that worker did (a
    crash can take back saves that were not yet durable), so its status is no proof
    that no bytes were received. `stop_request` is a cancel or pause asked for while the
    previous worker held it, which never heard of it."""

    record: dict
    previous_worker: str | None = None
    stale: bool = False
    stop_request: str | None = None


@dataclass
class _Lease:
    worker_id: str
    until: float | None  # monotonic; None once handed back
    stop_request: str | None = None


def _newest_first(record: dict) -> tuple:
    # end_time is whole seconds; the manager's local `finished_ns` orders ties.
    local = record.get(LOCAL_KEY) or {}
    return (
        record.get("end_time") or 0,
        local.get("finished_ns") or 0,
        record.get("start_time") or 0,
    )


class DownloadRepository:
    # Only this process works these records.
    shared = False

    def __init__(self, store: Store):
        self._store = store
        # id -> (generation of the newest save not yet on disk, the durable record or None)
        self._pending: dict[str, tuple[int, dict | None]] = {}
        # Who holds each queued or running download claimed since this process began.
        self._leases: dict[str, _Lease] = {}
        # Queued downloads this process recorded and nobody has claimed yet.
        self._queued_here: set[str] = set()
        # Ids of the queued, running and paused records (None until first needed):
        # claiming runs every tick and the active list on every poll, and neither may
        # walk the whole history to find them.
        self._active_ids: set[str] | None = None
        # The queued and running records' places, oldest first, and each one's place by
        # id (kept with _active_ids): a claim takes the first free one, and a start
        # counts the queue, without sorting or walking it.
        self._queue: list[tuple] = []
        self._queue_places: dict[str, tuple] = {}
        self._jobs_lock = threading.Lock()

    @property
    def _table(self):
        return self._store.db(_DB, group_commit=True).table("downloads")

    def save(self, record: dict, *, wait: bool = True) -> None:
        """Insert or wholly replace the record with `record["id"]`.

        Durable on return; with `wait=False` it returns at once and the change reaches the
        disk with the next save that waits (readers see it only from then on).
        """
        record = detached(record)
        record_id = record["id"]
        with self._store.lock:
            table = self._table
            current = table.get(doc_id=record_id)
            if current is not None:

                def replace(document: dict) -> None:
                    document.clear()
                    document.update(record)

                previous = detached(current)
                table.update(replace, doc_ids=[record_id])
            else:
                previous = None
                table.insert(Document(record, doc_id=record_id))
            self._hide(record_id, previous)
            if self._active_ids is not None:
                if record.get("status") in ACTIVE_DOWNLOAD_STATUSES:
                    self._active_ids.add(record_id)
                else:
                    self._active_ids.discard(record_id)
                self._place(record_id, _queue_place(record))
        with self._jobs_lock:
            if record.get("status") == DownloadStatus.STARTING:
                self._queued_here.add(record_id)
            else:
                self._queued_here.discard(record_id)
            if record.get("status") not in _RUNNABLE:
                self._leases.pop(record_id, None)
        if wait:
            self._commit()

    def _hide(self, record_id: str, previous: dict | None) -> None:
        """Show `previous` for `record_id` until the change just made is durable."""
        if record_id in self._pending:
            previous = self._pending[record_id][1]  # the durable one is older still
        self._pending[record_id] = (self._store.generation(_DB), previous)

    def flush(self) -> None:
        """Make every save so far durable, those made with `wait=False` included."""
        self._commit()

    def _commit(self) -> None:
        durable = self._store.commit(_DB)
        with self._store.lock:
            for record_id, (generation, _) in list(self._pending.items()):
                if generation <= durable:
                    del self._pending[record_id]

    def _durable_records(self) -> list[dict]:
        """Every record as it is on disk. Call with the store's lock held."""
        if not self._pending:
            return list(self._table.all())
        records = [r for r in self._table.all() if r["id"] not in self._pending]
        records.extend(previous for _, previous in self._pending.values() if previous)
        return records

    def get(self, record_id: str) -> dict | None:
        with self._store.lock:
            if record_id in self._pending:
                return detached(self._pending[record_id][1])
            return detached(self._table.get(doc_id=record_id))

    def _finished(self) -> list[dict]:
        records = [
            r for r in self._durable_records() if r.get("status") not in ACTIVE_DOWNLOAD_STATUSES
        ]
        records.sort(key=_newest_first, reverse=True)
        return records

    def history(self, limit: int | None = None) -> list[dict]:
        """Finished downloads, newest first by end time."""
        with self._store.lock:
            records = self._finished()
            if limit is not None:
                records = records[:limit]
            return detached(records)

    def unfinished(self) -> list[dict]:
        """Records still marked `starting`, `downloading` or `paused`, as they are on disk
        (after a crash, the first two are orphans)."""
        with self._store.lock:
            table = self._table
            records = []
            for record_id in self._active() | self._pending.keys():
                if record_id in self._pending:
                    record = self._pending[record_id][1]
                else:
                    record = table.get(doc_id=record_id)
                if record is not None and record.get("status") in ACTIVE_DOWNLOAD_STATUSES:
                    records.append(record)
            return detached(records)

    def prune_history(self, keep: int) -> int:
        """Drop all but the newest `keep` finished records; returns how many went."""
        with self._store.lock:
            # Cheap check first: sorting the whole history on every finish is not.
            if len(self._table) <= max(keep, 0):
                return 0
            surplus = [r["id"] for r in self._finished()[max(keep, 0) :]]
            if surplus:
                with self._jobs_lock:
                    for record_id in surplus:
                        self._leases.pop(record_id, None)
                # Shown gone at once: if a crash takes a removal back, the next prune
                # removes it again.
                self._table.remove(doc_ids=surplus)
                if self._active_ids is not None:
                    for record_id in surplus:
                        self._active_ids.discard(record_id)
                        self._place(record_id, None)
        if surplus:
            self._commit()
        return len(surplus)

    # --- jobs ----------------------------------------------------------------------

    def _active(self) -> set[str]:
        """The ids of the records in an active status. Call with the store's lock held."""
        if self._active_ids is None:
            records = self._table.all()
            self._active_ids = {
                r["id"] for r in records if r.get("status") in ACTIVE_DOWNLOAD_STATUSES
            }
            self._queue = sorted(place for r in records if (place := _queue_place(r)))
            self._queue_places = {place[1]: place for place in self._queue}
        return self._active_ids

    def _place(self, record_id: str, place: tuple | None) -> None:
        """Move `record_id` to `place` in the queue (None: out of it). Call with the
        store's lock held, once the index is built."""
        current = self._queue_places.get(record_id)
        if current == place:
            return
        if current is not None:
            del self._queue[bisect.bisect_left(self._queue, current)]
            del self._queue_places[record_id]
        if place is not None:
            bisect.insort(self._queue, place)
            self._queue_places[record_id] = place

    def _runnable(self, wanted: str | None = None) -> Iterator[dict]:
        """Queued and running records, oldest first (only `wanted`'s, if given), as they
        are asked for: the stored documents themselves, to be read, never changed or
        handed out. Call with the store's lock held, and change nothing while it runs."""
        self._active()
        if wanted is not None:
            ids: Iterable[str] = [wanted] if wanted in self._queue_places else []
        else:
            ids = (record_id for _, record_id in self._queue)
        table = self._table
        for record_id in ids:
            record = table.peek(record_id)
            if record is not None:
                yield record

    def _free(self, record_id: str, at: float) -> bool:
        lease = self._leases.get(record_id)
        return lease is None or lease.until is None or lease.until < at

    def count_runnable(self) -> int:
        """Downloads queued or running."""
        with self._store.lock:
            self._active()
            return len(self._queue)

    def claim_next(self, worker_id: str, lease_seconds: float) -> Claim | None:
        """The oldest queued or running file download nobody holds, now held by
        `worker_id` for `lease_seconds`. An import's download is claimed by id where its
        import runs, and here only once left by a crash."""
        return self._claim(None, worker_id, lease_seconds)

    def claim(self, record_id: str, worker_id: str, lease_seconds: float) -> Claim | None:
        """`claim_next` for one download; None when it is held or not queued or running."""
        return self._claim(record_id, worker_id, lease_seconds)

    def _claim(self, wanted: str | None, worker_id: str, lease_seconds: float) -> Claim | None:
        with self._store.lock, self._jobs_lock:
            at = time.monotonic()
            for record in self._runnable(wanted):
                record_id = record["id"]
                if not self._free(record_id, at):
                    continue
                lease = self._leases.get(record_id)
                previous = lease.worker_id if lease is not None and lease.until else None
                stale = lease is None and record_id not in self._queued_here
                if wanted is None and not (_is_file(record) or previous or stale):
                    continue
                self._queued_here.discard(record_id)
                stop = lease.stop_request if lease is not None else None
                self._leases[record_id] = _Lease(worker_id, at + lease_seconds, stop)
                return Claim(
                    detached(record), previous_worker=previous, stale=stale, stop_request=stop
                )
        return None

    def renew(
        self, worker_id: str, received: dict[str, int], lease_seconds: float
    ) -> dict[str, str | None]:
        """Extend the leases `worker_id` holds on the downloads in `received` (id ->
        bytes so far). Returns, for each one it still holds, the stop asked for (or
        None); a download missing from the answer was taken over by another worker."""
        held = {}
        with self._jobs_lock:
            until = time.monotonic() + lease_seconds
            for record_id in received:
                lease = self._leases.get(record_id)
                if lease is not None and lease.worker_id == worker_id and lease.until:
                    lease.until = until
                    held[record_id] = lease.stop_request
        return held

    def request_stop(self, record_id: str, code: str) -> bool:
        """Ask the worker holding the download to stop it; False when no live lease
        holds it."""
        with self._jobs_lock:
            lease = self._leases.get(record_id)
            if lease is None or self._free(record_id, time.monotonic()):
                return False
            lease.stop_request = code
            return True

    def release(self, record_id: str, worker_id: str) -> None:
        """Hand the download back: claimable at once if it is still queued or running."""
        with self._jobs_lock:
            lease = self._leases.get(record_id)
            if lease is not None and lease.worker_id == worker_id:
                self._leases[record_id] = _Lease(worker_id, None)

    def taken(self, record_ids: list[str]) -> set[str]:
        """Of `record_ids`, those a live lease holds or that are no longer queued."""
        with self._store.lock, self._jobs_lock:
            at = time.monotonic()
            free = {r["id"] for r in self._runnable() if self._free(r["id"], at)}
        return set(record_ids) - free
