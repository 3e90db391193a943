"""The two storage backends behind one set of repositories: TinyDB files in the data
directory (the default), or a PostgreSQL database named by a URL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.contacts import ContactRepository
from storage.downloads import DownloadRepository
from storage.operations import OperationRepository
from storage.postgres.errors import DatabaseUnavailable
from storage.staging import StagingArea
from storage.store import Store
from storage.users import UserRepository
from storage.workspace import WorkspaceStore

__all__ = [
    "DatabaseUnavailable",
    "Repositories",
    "open_backend",
    "open_postgres",
    "open_tinydb",
]


@dataclass
class Repositories:
    """Everything the domain stores, whichever engine holds it."""

    kind: str  # "tinydb" or "postgresql"
    users: Any
    downloads: Any
    operations: Any
    staging: StagingArea
    workspace: Any
    contacts: Any
    close: Callable[[], None]
    # Whether the database answers now; always true for files on a local disk.
    reachable: Callable[[], bool]
    # Whether this process is the one server that recovers unfinished imports (the
    # first to ask); TinyDB's data-directory lock already makes it the only one.
    claim_import_recovery: Callable[[], bool]
    # Messages heard by every process on the same database; None where one process
    # owns the storage (TinyDB), so there is nobody else to tell.
    event_channel: Any = None
    # Records every instance changes together (the login throttle's counts); None where
    # one process owns the storage and keeps them in memory.
    throttle_records: Any = None


def open_tinydb(state_dir: Path, *, fsync: bool = True) -> Repositories:
    """Raises storage.store.DataDirLocked when another process owns the directory."""
    store = Store(state_dir, fsync=fsync)
    workspace = WorkspaceStore(store)

    def close() -> None:
        workspace.close()
        store.close()

    return Repositories(
        kind="tinydb",
        users=UserRepository(store),
        downloads=DownloadRepository(store),
        operations=OperationRepository(store),
        staging=StagingArea(store),
        workspace=workspace,
        contacts=ContactRepository(store),
        close=close,
        reachable=lambda: True,
        claim_import_recovery=lambda: True,
    )


def open_postgres(url: str, state_dir: Path, *, fsync: bool = True) -> Repositories:
    """Connects and brings the schema up to date; raises DatabaseUnavailable when it cannot.

    Import staging stays in files under `state_dir`.
    """
    from storage.postgres import (
        connection,
        contacts,
        downloads,
        event_channel,
        operations,
        throttle_records,
        users,
        workspace,
    )

    database = connection.connect(url)
    state_dir.mkdir(parents=True, exist_ok=True)
    files = connection.LocalFiles(state_dir, fsync=fsync)
    return Repositories(
        kind="postgresql",
        users=users.UserRepository(database),
        downloads=downloads.DownloadRepository(database),
        operations=operations.OperationRepository(database),
        staging=StagingArea(files),
        workspace=workspace.WorkspaceStore(database),
        contacts=contacts.ContactRepository(database),
        close=database.close,
        reachable=database.ping,
        claim_import_recovery=database.claim_import_recovery,
        event_channel=event_channel.EventChannel(database),
        throttle_records=throttle_records.ThrottleRecords(database),
    )


def open_backend(database_url: str | None, state_dir: Path, *, fsync: bool = True):
    if database_url:
        return open_postgres(database_url, state_dir, fsync=fsync)
    return open_tinydb(state_dir, fsync=fsync)
