"""Download records in `downloads.json`, one document per download, keyed by its id.

Only state changes are written here (created, headers accepted, finished); progress
stays in memory, because every TinyDB write rewrites the whole file.
"""

from __future__ import annotations

from tinydb.table import Document

from storage.store import Store, detached

ACTIVE_STATUSES = frozenset({"starting", "downloading"})


def _newest_first(record: dict) -> tuple:
    # end_time is whole seconds; the manager's `_local.finished_ns` orders ties.
    local = record.get("_local") or {}
    return (
        record.get("end_time") or 0,
        local.get("finished_ns") or 0,
        record.get("start_time") or 0,
    )


class DownloadRepository:
    def __init__(self, store: Store):
        self._store = store

    @property
    def _table(self):
        return self._store.db("downloads").table("downloads")

    def save(self, record: dict) -> None:
        """Insert or wholly replace the record with `record["id"]`, in one write."""
        record = detached(record)
        record_id = record["id"]
        with self._store.lock:
            table = self._table
            if table.contains(doc_id=record_id):

                def replace(document: dict) -> None:
                    document.clear()
                    document.update(record)

                table.update(replace, doc_ids=[record_id])
            else:
                table.insert(Document(record, doc_id=record_id))

    def get(self, record_id: str) -> dict | None:
        with self._store.lock:
            return detached(self._table.get(doc_id=record_id))

    def _finished(self) -> list[dict]:
        records = [r for r in self._table.all() if r.get("status") not in ACTIVE_STATUSES]
        records.sort(key=_newest_first, reverse=True)
        return records

    def history(self, limit: int | None = None) -> list[dict]:
        """Finished downloads, newest first by end time."""
        with self._store.lock:
            records = self._finished()
            if limit is not None:
                records = records[:limit]
            return [detached(r) for r in records]

    def unfinished(self) -> list[dict]:
        """Records still marked `starting` or `downloading` (after a crash, orphans)."""
        with self._store.lock:
            return [detached(r) for r in self._table.all() if r.get("status") in ACTIVE_STATUSES]

    def prune_history(self, keep: int) -> int:
        """Drop all but the newest `keep` finished records; returns how many went."""
        with self._store.lock:
            surplus = [r["id"] for r in self._finished()[max(keep, 0) :]]
            if surplus:
                self._table.remove(doc_ids=surplus)
            return len(surplus)
