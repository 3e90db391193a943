"""Where an import operation stands: its steps grouped as the API reports them, and why
an operation that could not go on ended."""

from __future__ import annotations

import errno

from ferry.kernel.statuses import ImportState, ImportStep

PREPARING = frozenset(
    {
        ImportStep.PREPARING_STARTED,
        ImportStep.PREPARING_USERS,
        ImportStep.PREPARING_CHANNELS,
        ImportStep.PREPARING_MESSAGES,
        ImportStep.PREPARING_CONTACTS,
    }
)
IMPORTING = frozenset(
    {
        ImportStep.IMPORTING_STARTED,
        ImportStep.IMPORTING_USERS,
        ImportStep.IMPORTING_CHANNELS,
        ImportStep.IMPORTING_MESSAGES,
        ImportStep.IMPORTING_CONTACTS,
        ImportStep.IMPORTING_FILES,
        ImportStep.FINISHING,
    }
)
# getImportFileData answers {waiting: true} while the file arrives or is parsed.
WAITING = (
    frozenset({ImportStep.UPLOADING, ImportStep.DOWNLOADING_FILE, ImportStep.FILE_LOADED})
    | PREPARING
)

RESTART_REASON = "The server stopped while this operation was running; start it again."
DISK_FULL_REASON = "The server ran out of disk space; free some space and start it again."


def disk_full(failure: BaseException) -> bool:
    """A write refused for lack of space (or of quota), not a bug."""
    return isinstance(failure, OSError) and failure.errno in (errno.ENOSPC, errno.EDQUOT)


_ENDED = {
    ImportStep.DONE: ImportState.DONE,
    ImportStep.FAILED: ImportState.ERROR,
    ImportStep.CANCELLED: ImportState.CANCELED,
}


def import_state(operation: dict | None) -> ImportState:
    """import.status's state, derived from the operation as Rocket.Chat derives it."""
    if operation is None:
        return ImportState.NONE
    status = operation["status"]
    if not operation.get("valid", True) and status != ImportStep.DONE:
        return ImportState.ERROR
    if status == ImportStep.NEW:
        return ImportState.NEW
    if status in WAITING:
        return ImportState.LOADING
    if status == ImportStep.USER_SELECTION:
        return ImportState.READY
    if status in IMPORTING:
        return ImportState.IMPORTING
    return _ENDED.get(status, ImportState.ERROR)
