"""Import operation records on PostgreSQL; the same methods as storage.operations.

Work on an operation is a job in its row: workers claim it with `FOR UPDATE SKIP
LOCKED` (so two never take the same one), hold it by a lease they renew, and let go of
it when it is done or when they stop; a lease that runs out makes the job claimable
again, by any worker of the database.
"""

from __future__ import annotations

from collections.abc import Collection

from storage.operations import JobClaim
from storage.postgres.connection import Database, document

_LEASE_FREE = "(lease_until IS NULL OR lease_until < now())"
_LEASE_FOR = "now() + make_interval(secs => %(lease)s)"


def _columns(operation: dict) -> tuple:
    return (
        operation.get("ts") or "",
        operation.get("_updatedAt") or "",
        bool(operation.get("valid", True)),
        operation.get("status") or "",
    )


class OperationRepository:
    # Other processes may work the same records.
    shared = True

    def __init__(self, database: Database):
        self._db = database

    def insert(self, operation: dict) -> None:
        with self._db.connection() as connection:
            connection.execute(
                "INSERT INTO operations (id, doc, ts, updated_at, valid, status) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
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
        return self._change(operation_id, fields, "")

    def _change(self, operation_id: str, fields: dict, also_set: str, *also) -> dict | None:
        with self._db.transaction() as connection:
            row = connection.execute(
                "SELECT doc FROM operations WHERE id = %s FOR UPDATE", (operation_id,)
            ).fetchone()
            if row is None:
                return None
            operation = row[0]
            operation.update(fields)
            connection.execute(
                "UPDATE operations SET doc = %s, (ts, updated_at, valid, status) = "
                f"(%s, %s, %s, %s){also_set} WHERE id = %s",
                (document(operation), *_columns(operation), *also, operation_id),
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

    # --- jobs ----------------------------------------------------------------------

    def queue_job(self, operation_id: str, job: str, job_input: dict, fields: dict) -> dict | None:
        """Replace `fields` and make `job` on the operation claimable by any worker, in
        one transaction; whoever held the operation lets go of it. None if unknown."""
        return self._change(
            operation_id,
            fields,
            ", job = %s, job_input = %s, queued_at = clock_timestamp(), worker_id = NULL, "
            "lease_until = NULL",
            job,
            document(job_input),
        )

    def hold(self, operation_id: str, worker_id: str, lease_seconds: float) -> None:
        """`worker_id` works on the operation outside the queue, for `lease_seconds`."""
        with self._db.connection() as connection:
            connection.execute(
                f"UPDATE operations SET worker_id = %(worker)s, lease_until = {_LEASE_FOR} "
                "WHERE id = %(id)s",
                {"worker": worker_id, "lease": lease_seconds, "id": operation_id},
            )

    def claim_job(
        self, worker_id: str, lease_seconds: float, jobs: Collection[str]
    ) -> JobClaim | None:
        """The oldest queued job of the kinds in `jobs` that no live lease holds, now held
        by `worker_id` for `lease_seconds`."""
        with self._db.connection() as connection:
            row = connection.execute(
                "WITH next AS (SELECT id, worker_id AS previous FROM operations "
                f"WHERE job = ANY(%(jobs)s) AND {_LEASE_FREE} "
                "ORDER BY queued_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) "
                f"UPDATE operations AS o SET worker_id = %(worker)s, lease_until = {_LEASE_FOR} "
                "FROM next WHERE o.id = next.id "
                "RETURNING o.doc, o.job, o.job_input, next.previous",
                {"jobs": list(jobs), "worker": worker_id, "lease": lease_seconds},
            ).fetchone()
        return None if row is None else JobClaim(*row)

    def renew(self, worker_id: str, operation_ids: Collection[str], lease_seconds: float) -> set:
        """Extend the leases `worker_id` holds on these operations, in one statement;
        returns the ids it still holds (one missing was taken over by another worker)."""
        if not operation_ids:
            return set()
        with self._db.connection() as connection:
            rows = connection.execute(
                f"UPDATE operations SET lease_until = {_LEASE_FOR} "
                "WHERE id = ANY(%(ids)s) AND worker_id = %(worker)s RETURNING id",
                {"lease": lease_seconds, "ids": list(operation_ids), "worker": worker_id},
            ).fetchall()
        return {row[0] for row in rows}

    def let_go(self, operation_id: str, worker_id: str, *, keep_job: bool) -> None:
        """`worker_id` stops holding the operation: its job, when `keep_job`, is claimable
        again at once, else it is done and dropped. Nothing happens when another
        worker holds it now."""
        with self._db.connection() as connection:
            connection.execute(
                "UPDATE operations SET worker_id = NULL, lease_until = NULL, "
                "job = CASE WHEN %(keep)s THEN job END, "
                "job_input = CASE WHEN %(keep)s THEN job_input END "
                "WHERE id = %(id)s AND worker_id = %(worker)s",
                {"keep": keep_job, "id": operation_id, "worker": worker_id},
            )

    def running_jobs(self, jobs: Collection[str]) -> int:
        """Jobs of the kinds in `jobs` that a worker holds now."""
        with self._db.connection() as connection:
            return connection.execute(
                "SELECT count(*) FROM operations WHERE job = ANY(%s) AND lease_until >= now()",
                (list(jobs),),
            ).fetchone()[0]

    def abandoned(self, statuses: Collection[str]) -> list[dict]:
        """Valid operations in one of `statuses` that nobody works on: no job queued and
        no live lease (their worker stopped or died)."""
        with self._db.connection() as connection:
            rows = connection.execute(
                "SELECT doc FROM operations WHERE valid AND status = ANY(%s) "
                f"AND job IS NULL AND {_LEASE_FREE} ORDER BY ts, id",
                ([str(status) for status in statuses],),
            ).fetchall()
        return [row[0] for row in rows]
