"""Moving a TinyDB installation's records into a PostgreSQL database, nothing lost.

Users (with their password hashes), tokens, download history, import operations and
the workspace (rooms, members, every message, hidden ones included, and uploads) are
copied, then counted again on both sides. Import staging and files are not records:
they stay in the data directory, which the PostgreSQL server goes on using.
"""

from __future__ import annotations

from pathlib import Path

from storage.backends import Repositories, open_postgres, open_tinydb

# Messages written per transaction while copying a room.
_MESSAGE_BATCH = 5000


class TargetNotEmpty(RuntimeError):
    """The database already holds records; copying into it could mix two installations."""


def counts(repositories: Repositories) -> dict[str, int]:
    """How many records of each kind a backend holds."""
    workspace = repositories.workspace
    rooms, _ = workspace.rooms(None)
    return {
        "users": repositories.users.count(),
        "tokens": len(repositories.users.all_tokens()),
        "downloads": len(repositories.downloads.history())
        + len(repositories.downloads.unfinished()),
        "operations": len(repositories.operations.all()),
        "rooms": len(rooms),
        "memberships": sum(len(workspace.members(r["_id"])) for r in rooms),
        "messages": sum(workspace.message_count(r["_id"], visible_only=False) for r in rooms),
        "uploads": len(workspace.uploads()),
        "contacts": len(repositories.contacts.all()),
    }


def copy_records(source: Repositories, target: Repositories) -> None:
    users, _ = source.users.page(0, max(source.users.count(), 1))
    target.users.insert_many(users)
    target.users.insert_tokens(source.users.all_tokens())
    for record in [*source.downloads.history(), *source.downloads.unfinished()]:
        target.downloads.save(record)
    for operation in source.operations.all():
        target.operations.insert(operation)
    rooms, _ = source.workspace.rooms(None)
    target.workspace.insert_rooms(rooms)
    for room in rooms:
        target.workspace.set_members(room["_id"], source.workspace.members(room["_id"]))
        batch: list[dict] = []
        for message in source.workspace.messages(room["_id"]):
            batch.append(message)
            if len(batch) >= _MESSAGE_BATCH:
                target.workspace.upsert_messages(batch)
                batch = []
        target.workspace.upsert_messages(batch)
    for upload in source.workspace.uploads():
        target.workspace.save_upload(upload)
    target.contacts.insert_many(source.contacts.all())


def migrate_storage(data_dir: Path, database_url: str) -> dict[str, int]:
    """Copy every record under `data_dir` into `database_url`; returns the counts copied.

    Raises TargetNotEmpty when the database already holds users or rooms, and
    RuntimeError when the counts read back differ from the source's.
    """
    state_dir = Path(data_dir) / "state"
    source = open_tinydb(state_dir)
    try:
        target = open_postgres(database_url, state_dir)
        try:
            if any(counts(target).values()):
                raise TargetNotEmpty(
                    "the database already holds records; migrate into an empty database"
                )
            expected = counts(source)
            copy_records(source, target)
            found = counts(target)
        finally:
            target.close()
    finally:
        source.close()
    if found != expected:
        raise RuntimeError(f"copied counts differ: expected {expected}, found {found}")
    return found
