"""Import operation records on PostgreSQL; the same methods as storage.operations."""

from __future__ import annotations

from storage.postgres.connection import Database, document


def _columns(operation: dict) -> tuple:
    return (
        operation.get("ts") or "",
        operation.get("_updatedAt") or "",
        bool(operation.get("valid", True)),
    )


class OperationRepository:
    def __init__(self, database: Database):
        self._db = database

    def insert(self, operation: dict) -> None:
        with self._db.connection() as connection:
            connection.execute(
                "INSERT INTO operations (id, doc, ts, updated_at, valid) "
                "VALUES (%s, %s, %s, %s, %s)",
                (operation["_id"], document(operation), *_columns(operation)),
            )

    def get(self, operation_id: str) -> dict | None:
        with self._db.connection() as connection:
            row = connection.execute(
                "SELECT doc FROM operations WHERE id = %s", (operation_id,)
            ).fetchone()
        return row[0] if row else None

    def update(self, operation_id: str, fields: dict) -> dict | None:
        """Replace top-level fields; returns the updated operation, None if unknown."""
        with self._db.transaction() as connection:
            row = connection.execute(
                "SELECT doc FROM operations WHERE id = %s FOR UPDATE", (operation_id,)
            ).fetchone()
            if row is None:
                return None
            operation = row[0]
            operation.update(fields)
            connection.execute(
                "UPDATE operations SET doc = %s, (ts, updated_at, valid) = (%s, %s, %s) "
                "WHERE id = %s",
                (document(operation), *_columns(operation), operation_id),
            )
        return operation

    def latest(self) -> dict | None:
        """The current operation: the newest by creation time (`ts`)."""
        with self._db.connection() as connection:
            row = connection.execute(
                'SELECT doc FROM operations ORDER BY ts COLLATE "C" DESC, id COLLATE "C" DESC '
                "LIMIT 1"
            ).fetchone()
        return row[0] if row else None

    def recent(self, limit: int) -> list[dict]:
        """The `limit` most recently updated operations, newest first."""
        with self._db.connection() as connection:
            rows = connection.execute(
                'SELECT doc FROM operations ORDER BY updated_at COLLATE "C" DESC LIMIT %s',
                (max(limit, 0),),
            ).fetchall()
        return [row[0] for row in rows]

    def all(self) -> list[dict]:
        with self._db.connection() as connection:
            rows = connection.execute("SELECT doc FROM operations ORDER BY ts, id").fetchall()
        return [row[0] for row in rows]

    def invalidate_all(self, updated_at: str) -> list[str]:
        """Marks every still-valid operation invalid in one transaction; returns their ids."""
        with self._db.transaction() as connection:
            rows = connection.execute(
                "SELECT id, doc FROM operations WHERE valid FOR UPDATE"
            ).fetchall()
            with connection.cursor() as cursor:
                cursor.executemany(
                    "UPDATE operations SET valid = false, updated_at = %s, doc = %s WHERE id = %s",
                    [
                        (updated_at, document({**op, "valid": False, "_updatedAt": updated_at}), i)
                        for i, op in rows
                    ],
                )
        return [row[0] for row in rows]
