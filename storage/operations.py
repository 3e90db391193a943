"""Import operation records (Rocket.Chat's `rocketchat_import` collection)."""

from __future__ import annotations

from tinydb.table import Document

from storage.store import Store, detached


class OperationRepository:
    """Operations live in `imports.json`, table `operations`, keyed by `_id`.

    Few and small: one record per import, rewritten on state changes and on throttled
    progress updates, never per record imported.
    """

    def __init__(self, store: Store):
        self._store = store

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
