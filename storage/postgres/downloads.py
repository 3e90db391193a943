"""Download records on PostgreSQL; the same methods as storage.downloads.

Each save is its own committed statement, so it is durable when it returns and
`wait=False` changes nothing but the name of the call.
"""

from __future__ import annotations

from ferry.kernel.statuses import ACTIVE_DOWNLOAD_STATUSES
from storage.downloads import LOCAL_KEY
from storage.postgres.connection import Database, document

_ACTIVE = [str(status) for status in ACTIVE_DOWNLOAD_STATUSES]
_NEWEST_FIRST = "ORDER BY end_time DESC, finished_ns DESC, start_time DESC, id DESC"


class DownloadRepository:
    def __init__(self, database: Database):
        self._db = database

    def save(self, record: dict, *, wait: bool = True) -> None:
        """Insert or wholly replace the record with `record["id"]`; durable on return."""
        local = record.get(LOCAL_KEY) or {}
        with self._db.connection() as connection:
            connection.execute(
                "INSERT INTO downloads (id, doc, active, end_time, finished_ns, start_time) "
                "VALUES (%s, %s, %s = ANY(%s), %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, active = excluded.active, "
                "end_time = excluded.end_time, finished_ns = excluded.finished_ns, "
                "start_time = excluded.start_time",
                (
                    record["id"],
                    document(record),
                    record.get("status"),
                    _ACTIVE,
                    record.get("end_time") or 0,
                    local.get("finished_ns") or 0,
                    record.get("start_time") or 0,
                ),
            )

    def flush(self) -> None:
        """Every save is durable already."""

    def get(self, record_id: str) -> dict | None:
        with self._db.connection() as connection:
            row = connection.execute(
                "SELECT doc FROM downloads WHERE id = %s", (record_id,)
            ).fetchone()
        return row[0] if row else None

    def history(self, limit: int | None = None) -> list[dict]:
        """Finished downloads, newest first by end time."""
        with self._db.connection() as connection:
            rows = connection.execute(
                f"SELECT doc FROM downloads WHERE NOT active {_NEWEST_FIRST} LIMIT %s",
                (limit,),
            ).fetchall()
        return [row[0] for row in rows]

    def unfinished(self) -> list[dict]:
        """Records still marked `starting` or `downloading` (after a crash, orphans)."""
        with self._db.connection() as connection:
            rows = connection.execute("SELECT doc FROM downloads WHERE active").fetchall()
        return [row[0] for row in rows]

    def prune_history(self, keep: int) -> int:
        """Drop all but the newest `keep` finished records; returns how many went."""
        with self._db.connection() as connection:
            return connection.execute(
                "DELETE FROM downloads WHERE id IN ("
                f"SELECT id FROM downloads WHERE NOT active {_NEWEST_FIRST} OFFSET %s)",
                (max(keep, 0),),
            ).rowcount
