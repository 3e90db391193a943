"""Download records on PostgreSQL; the same methods as storage.downloads.

Each save is its own committed statement, so it is durable when it returns and
`wait=False` changes nothing but the name of the call.

A queued or running download is a job: workers claim it with `FOR UPDATE SKIP LOCKED`
(so two never take the same row), hold it by a lease they renew for all their jobs in
one statement, and hand it back with `release`. A lease that runs out makes the job
claimable again.
"""

from __future__ import annotations

from ferry.kernel.statuses import ACTIVE_DOWNLOAD_STATUSES, DownloadKind, DownloadStatus
from storage.downloads import LOCAL_KEY, Claim
from storage.postgres.connection import Database, document

_ACTIVE = [str(status) for status in ACTIVE_DOWNLOAD_STATUSES]
_RUNNABLE = [str(DownloadStatus.STARTING), str(DownloadStatus.DOWNLOADING)]
_NEWEST_FIRST = "ORDER BY end_time DESC, finished_ns DESC, start_time DESC, id DESC"
_LEASE_FREE = "(lease_until IS NULL OR lease_until < now())"
_CLAIM = (
    "WITH next AS (SELECT id, worker_id AS previous FROM downloads "
    f"WHERE runnable AND {_LEASE_FREE} {{where}} "
    "ORDER BY start_time, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
    "UPDATE downloads AS d SET worker_id = %(worker)s, "
    "lease_until = now() + make_interval(secs => %(lease)s) "
    "FROM next WHERE d.id = next.id RETURNING d.doc, next.previous, d.stop_request"
)


def _with_progress(doc: dict, runnable: bool, received: int | None) -> dict:
    """The record with the bytes its worker last told, while it runs."""
    if runnable and received is not None:
        doc["current_size"] = received
    return doc


class DownloadRepository:
    # Other processes may work the same records.
    shared = True

    def __init__(self, database: Database):
        self._db = database

    def save(self, record: dict, *, wait: bool = True) -> None:
        """Insert or wholly replace the record with `record["id"]`; durable on return."""
        local = record.get(LOCAL_KEY) or {}
        with self._db.connection() as connection:
            connection.execute(
                "INSERT INTO downloads (id, doc, active, runnable, file_kind, end_time, "
                "finished_ns, start_time) VALUES (%s, %s, %s = ANY(%s), %s = ANY(%s), %s, %s, "
                "%s, %s) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, "
                "active = excluded.active, runnable = excluded.runnable, "
                "file_kind = excluded.file_kind, end_time = excluded.end_time, "
                "finished_ns = excluded.finished_ns, start_time = excluded.start_time",
                (
                    record["id"],
                    document(record),
                    record.get("status"),
                    _ACTIVE,
                    record.get("status"),
                    _RUNNABLE,
                    record.get("kind", DownloadKind.FILE) == DownloadKind.FILE,
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
                "SELECT doc, runnable, received FROM downloads WHERE id = %s", (record_id,)
            ).fetchone()
        return _with_progress(*row) if row else None

    def history(self, limit: int | None = None) -> list[dict]:
        """Finished downloads, newest first by end time."""
        with self._db.connection() as connection:
            rows = connection.execute(
                f"SELECT doc FROM downloads WHERE NOT active {_NEWEST_FIRST} LIMIT %s",
                (limit,),
            ).fetchall()
        return [row[0] for row in rows]

    def unfinished(self) -> list[dict]:
        """Records still marked `starting`, `downloading` or `paused`."""
        with self._db.connection() as connection:
            rows = connection.execute(
                "SELECT doc, runnable, received FROM downloads WHERE active"
            ).fetchall()
        return [_with_progress(*row) for row in rows]

    def prune_history(self, keep: int) -> int:
        """Drop all but the newest `keep` finished records; returns how many went."""
        with self._db.connection() as connection:
            return connection.execute(
                "DELETE FROM downloads WHERE id IN ("
                f"SELECT id FROM downloads WHERE NOT active {_NEWEST_FIRST} OFFSET %s)",
                (max(keep, 0),),
            ).rowcount

    # --- jobs ----------------------------------------------------------------------

    def count_runnable(self) -> int:
        """Downloads queued or running, on every worker."""
        with self._db.connection() as connection:
            return connection.execute("SELECT count(*) FROM downloads WHERE runnable").fetchone()[0]

    def claim_next(self, worker_id: str, lease_seconds: float) -> Claim | None:
        """The oldest queued or running file download nobody holds (never claimed,
        handed back, or its lease run out), now held by `worker_id` for `lease_seconds`."""
        # An import's download runs where its import runs (claimed by id there); only
        # once that process died (its lease ran out) may another worker close it.
        return self._claim(
            _CLAIM.format(where="AND (file_kind OR worker_id IS NOT NULL)"),
            worker_id,
            lease_seconds,
        )

    def claim(self, record_id: str, worker_id: str, lease_seconds: float) -> Claim | None:
        """`claim_next` for one download; None when it is held or not queued or running."""
        return self._claim(
            _CLAIM.format(where="AND id = %(id)s"), worker_id, lease_seconds, record_id
        )

    def _claim(
        self, statement: str, worker_id: str, lease_seconds: float, record_id: str | None = None
    ) -> Claim | None:
        with self._db.connection() as connection:
            row = connection.execute(
                statement, {"worker": worker_id, "lease": lease_seconds, "id": record_id}
            ).fetchone()
        if row is None:
            return None
        return Claim(row[0], previous_worker=row[1], stale=False, stop_request=row[2])

    def renew(
        self, worker_id: str, received: dict[str, int], lease_seconds: float
    ) -> dict[str, str | None]:
        """Extend the leases `worker_id` holds on the downloads in `received` (id ->
        bytes so far, shown to every instance) in one statement. Returns, for each one
        it still holds, the stop asked for on another instance (or None); a download
        missing from the answer was taken over by another worker."""
        if not received:
            return {}
        with self._db.connection() as connection:
            rows = connection.execute(
                "UPDATE downloads AS d SET lease_until = now() + make_interval(secs => %s), "
                "received = p.received "
                "FROM unnest(%s::text[], %s::bigint[]) AS p(id, received) "
                "WHERE d.id = p.id AND d.worker_id = %s AND d.runnable "
                "RETURNING d.id, d.stop_request",
                (lease_seconds, list(received), list(received.values()), worker_id),
            ).fetchall()
        return dict(rows)

    def request_stop(self, record_id: str, code: str) -> bool:
        """Ask the worker holding the download to stop it (`code`: cancel or pause);
        False when no live lease holds it."""
        with self._db.connection() as connection:
            row = connection.execute(
                "UPDATE downloads SET stop_request = %s WHERE id = %s AND runnable "
                "AND lease_until >= now() RETURNING id",
                (code, record_id),
            ).fetchone()
        return row is not None

    def release(self, record_id: str, worker_id: str) -> None:
        """Hand the download back: claimable at once if it is still queued or running."""
        with self._db.connection() as connection:
            connection.execute(
                "UPDATE downloads SET worker_id = NULL, lease_until = NULL, "
                "stop_request = NULL, received = NULL WHERE id = %s AND worker_id = %s",
                (record_id, worker_id),
            )

    def taken(self, record_ids: list[str]) -> set[str]:
        """Of `record_ids`, those a live lease holds or that are no longer queued."""
        if not record_ids:
            return set()
        with self._db.connection() as connection:
            rows = connection.execute(
                "SELECT q.id FROM unnest(%s::text[]) AS q(id) WHERE NOT EXISTS ("
                "SELECT 1 FROM downloads AS d WHERE d.id = q.id AND d.runnable "
                f"AND {_LEASE_FREE})",
                (record_ids,),
            ).fetchall()
        return {row[0] for row in rows}
