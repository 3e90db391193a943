"""The `import.*` API: an operation filled with users by the client instead of a file."""

from __future__ import annotations

from collections.abc import Callable

from ferry.chat.convert.state import Selection
from ferry.chat.operations.importers import (
    IMPORTER_NOT_DEFINED,
    IMPORTERS,
    INVALID_OPERATION_STATUS,
    OPERATION_NOT_FOUND,
)
from ferry.chat.operations.lifecycle import import_state
from ferry.chat.operations.records import OperationRecords
from ferry.kernel.errors import PlainRocketChatError
from ferry.kernel.statuses import ImportState, ImportStep, Role
from storage.staging import StagingArea

_ROLES = tuple(Role)


class ApiImporter:
    """`clear` ends every other operation before a new one starts; `begin_import` starts the
    import of a prepared operation, as startImport does."""

    def __init__(
        self,
        operations: OperationRecords,
        staging: StagingArea,
        *,
        clear: Callable[[], None],
        begin_import: Callable[[str, dict, Selection, str], None],
        hash_password: Callable[[str], str],
    ):
        self._operations = operations
        self._staging = staging
        self._clear = clear
        self._begin_import = begin_import
        self._hash_password = hash_password

    def new_operation(self, user_id: str) -> dict:
        """import.new"""
        self._clear()
        return self._operations.create(user_id, IMPORTERS["api"])

    def status(self) -> dict:
        """import.status"""
        operation = self._operations.current()
        if operation is None:
            return {"state": ImportState.NONE}
        return {"state": import_state(operation), "operation": operation}

    def add_users(self, users: list[dict]) -> None:
        """import.addUsers, with Rocket.Chat's checks and messages."""
        if not users:
            return
        operation = self._operations.latest()
        if operation is None or not operation.get("valid", True):
            raise PlainRocketChatError("Import operation not initialized.")
        state = import_state(operation)
        if state in (ImportState.LOADING, ImportState.IMPORTING):
            raise PlainRocketChatError("The current import operation can not receive new data.")
        if state in (ImportState.DONE, ImportState.ERROR, ImportState.CANCELED):
            raise PlainRocketChatError("The current import operation is already finished.")
        for user in users:
            if not any(user.get("emails") or []) or not any(user.get("importIds") or []):
                raise PlainRocketChatError("Users are missing required data.")
            if any(role not in _ROLES for role in user.get("roles") or []):
                raise PlainRocketChatError(
                    "One or more of the users have been assigned invalid roles."
                )
        writer = self._staging.writer(operation["_id"], append=True)
        for user in users:
            roles = list(dict.fromkeys([*(user.get("roles") or []), Role.USER]))
            record = {**user, "emails": [e for e in user["emails"] if e], "roles": roles}
            # Only the hash is staged; the plain password never reaches the database.
            record.pop("passwordHash", None)
            password = record.pop("password", None)
            if isinstance(password, str) and password:
                record["passwordHash"] = self._hash_password(password)
            record["type"] = user.get("type") or ("bot" if Role.BOT in roles else "user")
            writer.add_user(record)
        counts = writer.finish()
        count = dict(operation.get("count") or {})
        count["users"] = counts["users"]
        count["total"] = counts["users"] + counts["channels"] + counts["messages"]
        self._operations.update(operation["_id"], status=ImportStep.USER_SELECTION, count=count)

    def run(self, user_id: str) -> None:
        """import.run: import every staged user of the API operation."""
        operation = self._operations.latest()
        if operation is None or not operation.get("valid", True):
            raise PlainRocketChatError(OPERATION_NOT_FOUND)
        if operation["status"] != ImportStep.USER_SELECTION:
            raise PlainRocketChatError(INVALID_OPERATION_STATUS)
        if operation["importerKey"] not in IMPORTERS:
            raise PlainRocketChatError(IMPORTER_NOT_DEFINED)
        self._begin_import(user_id, operation, Selection.everything(), "import.run")
