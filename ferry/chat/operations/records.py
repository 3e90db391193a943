"""The import operations as the API shows them: stored records plus the counts of work
in progress, and a listener told of every status written."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ferry.chat.operations.importers import OPERATION_NOT_FOUND, ImporterInfo
from ferry.chat.operations.lifecycle import import_state
from ferry.kernel.errors import MeteorError
from ferry.kernel.ids import now_iso, operation_id
from ferry.kernel.statuses import ImportStep
from storage.operations import OperationRepository

log = logging.getLogger("ferry.imports")


class OperationRecords:
    def __init__(
        self,
        repository: OperationRepository,
        on_status: Callable[[dict], None] | None = None,
    ):
        self._repository = repository
        # Told of every stored status (metrics and logs); it reports only changes.
        self._on_status = on_status
        self._status_listeners: list[Callable[[dict], None]] = []
        # Progress of running work, kept in memory between the throttled writes.
        self._live_counts: dict[str, dict] = {}

    # --- reading -------------------------------------------------------------------

    def get(self, op_id: str) -> dict | None:
        return self._repository.get(op_id)

    def latest(self) -> dict | None:
        return self._repository.latest()

    def all(self) -> list[dict]:
        return self._repository.all()

    def require_latest(self, details: str) -> dict:
        """The current operation; `details` names the method asking, as Rocket.Chat does.

        Raises:
            MeteorError: there is no operation at all.
        """
        operation = self._repository.latest()
        if operation is None:
            raise MeteorError(OPERATION_NOT_FOUND, "Import Operation Not Found", details)
        return operation

    def current(self) -> dict | None:
        return self.with_live_counts(self._repository.latest())

    def recent(self, limit: int) -> list[dict]:
        return [self.with_live_counts(op) for op in self._repository.recent(limit)]

    def with_live_counts(self, operation: dict | None) -> dict | None:
        if operation is not None and operation["_id"] in self._live_counts:
            operation["count"] = {
                **operation.get("count", {}),
                **self._live_counts[operation["_id"]],
            }
        return operation

    # --- writing -------------------------------------------------------------------

    def create(self, user_id: str, info: ImporterInfo) -> dict:
        now = now_iso()
        operation = {
            "_id": operation_id(),
            "type": info.operation_type or info.name,
            "importerKey": info.key,
            "ts": now,
            "status": ImportStep.NEW,
            "valid": True,
            "user": user_id,
            "_updatedAt": now,
            "count": {"total": 0, "completed": 0, "error": 0},
        }
        self._repository.insert(operation)
        self._status_changed(operation)
        return operation

    def update(self, op_id: str, **fields) -> dict | None:
        fields["_updatedAt"] = now_iso()
        operation = self._repository.update(op_id, fields)
        if "status" in fields and operation is not None:
            self._status_changed(operation)
        return operation

    def queue(self, op_id: str, job: str, job_input: dict, **fields) -> dict | None:
        """`update`, and queue `job` for the operation in the same step."""
        fields["_updatedAt"] = now_iso()
        operation = self._repository.queue_job(op_id, job, job_input, fields)
        if "status" in fields and operation is not None:
            self._status_changed(operation)
        return operation

    def finish(self, op_id: str, status: str, **fields) -> None:
        """Store the final status together with the last counts of the work."""
        operation = self._repository.get(op_id)
        count = {**(operation.get("count") or {}), **self._live_counts.get(op_id, {})}
        self.update(op_id, status=status, count=count, **fields)

    def invalidate_all(self) -> None:
        self._repository.invalidate_all(now_iso())

    # --- work in progress ----------------------------------------------------------

    def set_live_counts(self, op_id: str, counts: dict) -> None:
        self._live_counts[op_id] = counts

    def live_counts(self, op_id: str) -> dict:
        return self._live_counts[op_id]

    def drop_live_counts(self, op_id: str) -> None:
        self._live_counts.pop(op_id, None)

    def listen(self, listener: Callable[[dict], None]) -> None:
        """Tell `listener` of every stored status too."""
        self._status_listeners.append(listener)

    def _status_changed(self, operation: dict) -> None:
        listeners = [*self._status_listeners, *([self._on_status] if self._on_status else [])]
        for listener in listeners:
            try:
                listener(operation)
            except Exception:
                log.exception("status listener failed for import operation %s", operation["_id"])


def event_view(operation: dict) -> dict:
    """An operation as its live events show it: its step and state (as getImportProgress
    and import.status name them), counts, and how far it is in percent when known."""
    count = operation.get("count") or {}
    count = {key: count.get(key, 0) for key in ("completed", "total", "error")}
    total = count["total"]
    return {
        "id": operation["_id"],
        "type": operation.get("type"),
        "importerKey": operation.get("importerKey"),
        "user": operation.get("user"),
        "step": operation["status"],
        "state": import_state(operation),
        "valid": operation.get("valid", True),
        "count": count,
        "progress": min(100.0, round(count["completed"] * 100 / total, 1)) if total else None,
        "error": operation.get("error"),
        "_updatedAt": operation.get("_updatedAt"),
    }
