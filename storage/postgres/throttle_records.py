"""Small records every instance reads and changes together (the login throttle's
counts), each changed under a row lock so that two instances never lose an update."""

from __future__ import annotations

from collections.abc import Callable

from storage.postgres.connection import Database, document


class ThrottleRecords:
    def __init__(self, database: Database):
        self._database = database

    def get(self, counter: str, key: str) -> dict | None:
        with self._database.connection() as connection:
            row = connection.execute(
                "SELECT doc FROM throttle_records WHERE counter = %s AND key = %s",
                (counter, key),
            ).fetchone()
        return None if row is None else row[0]

    def change(
        self, counter: str, key: str, change: Callable[[dict | None], dict], seen: float
    ) -> None:
        """Replaces the record with `change(record)`, no other instance changing it
        meanwhile; `seen` is when, in Unix seconds."""
        with self._database.transaction() as connection:
            connection.execute(
                "INSERT INTO throttle_records (counter, key, doc, last_seen) "
                "VALUES (%s, %s, '{}', %s) ON CONFLICT DO NOTHING",
                (counter, key, seen),
            )
            (current,) = connection.execute(
                "SELECT doc FROM throttle_records WHERE counter = %s AND key = %s FOR UPDATE",
                (counter, key),
            ).fetchone()
            connection.execute(
                "UPDATE throttle_records SET doc = %s, last_seen = %s "
                "WHERE counter = %s AND key = %s",
                (document(change(current or None)), seen, counter, key),
            )

    def remove(self, counter: str, key: str) -> None:
        with self._database.connection() as connection:
            connection.execute(
                "DELETE FROM throttle_records WHERE counter = %s AND key = %s", (counter, key)
            )

    def forget_unseen_since(self, counter: str, moment: float) -> None:
        """Removes the counter's records last changed before `moment`."""
        with self._database.connection() as connection:
            connection.execute(
                "DELETE FROM throttle_records WHERE counter = %s AND last_seen < %s",
                (counter, moment),
            )
