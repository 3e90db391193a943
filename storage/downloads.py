"""Download records in `downloads.json`, one document per download, keyed by its id.

Only state changes are written here (created, headers accepted, finished); progress
stays in memory, because every TinyDB write rewrites the whole file.

Writes use the store's group commit: a save changes the records in memory under the
store's lock, then waits, outside it, until a disk write covering its change is done,
so readers never wait for an fsync and downloads finishing together share one. Until
a change is on disk, readers are shown the record as it was before it (or nothing, for
a new one): nothing is ever shown that a crash could take back.
"""

from __future__ import annotations

from tinydb.table import Document

from ferry.kernel.statuses import ACTIVE_DOWNLOAD_STATUSES
from storage.store import Store, detached

# The key of a record's local bookkeeping: fields kept for recovery (where the part
# file is, how to resume it, when the download ended) and never shown to clients.
LOCAL_KEY = "_local"
_DB = "downloads"


def _newest_first(record: dict) -> tuple:
    # end_time is whole seconds; the manager's local `finished_ns` orders ties.
    local = record.get(LOCAL_KEY) or {}
    return (
        record.get("end_time") or 0,
        local.get("finished_ns") or 0,
        record.get("start_time") or 0,
    )


class DownloadRepository:
    def __init__(self, store: Store):
        self._store = store
        # id -> (generation of the newest save not yet on disk, the durable record or None)
        self._pending: dict[str, tuple[int, dict | None]] = {}

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
        """Records still marked `starting` or `downloading` (after a crash, orphans)."""
        with self._store.lock:
            return detached(
                [r for r in self._durable_records() if r.get("status") in ACTIVE_DOWNLOAD_STATUSES]
            )

    def prune_history(self, keep: int) -> int:
        """Drop all but the newest `keep` finished records; returns how many went."""
        with self._store.lock:
            # Cheap check first: sorting the whole history on every finish is not.
            if len(self._table) <= max(keep, 0):
                return 0
            surplus = [r["id"] for r in self._finished()[max(keep, 0) :]]
            if surplus:
                # Shown gone at once: if a crash takes a removal back, the next prune
                # removes it again.
                self._table.remove(doc_ids=surplus)
        if surplus:
            self._commit()
        return len(surplus)
