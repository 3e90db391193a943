"""Schema migrations: numbered SQL files in `migrations/`, each applied once, in order.

Every file runs in one transaction with its row in `schema_version`, so a failed
migration leaves nothing half-done. An advisory lock keeps two processes starting at
the same time from applying the same file twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant shared by every Ferry process: the key of the migration advisory lock.
_LOCK_KEY = 0x0F3E2217


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def available() -> list[Migration]:
    """Every migration shipped with this version of Ferry, oldest first."""
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise RuntimeError(f"migration file {path.name} is not named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path))
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        # The version table records numbers only: a second file with a number already
        # applied would be skipped without a word.
        raise RuntimeError(f"two migration files share a number: {sorted(versions)}")
    return found


_CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def applied(connection: psycopg.Connection) -> list[int]:
    """Versions already applied to the database, oldest first."""
    exists = connection.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
    if not exists:
        return []
    return [row[0] for row in connection.execute("SELECT version FROM schema_version ORDER BY 1")]


def pending(connection: psycopg.Connection) -> list[Migration]:
    done = set(applied(connection))
    return [m for m in available() if m.version not in done]


def upgrade(connection: psycopg.Connection) -> list[Migration]:
    """Apply every pending migration; returns those applied now."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        connection.execute(_CREATE_VERSION_TABLE)
    done_now = []
    for migration in available():
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            already = connection.execute(
                "SELECT 1 FROM schema_version WHERE version = %s", (migration.version,)
            ).fetchone()
            if already:
                continue
            connection.execute(migration.path.read_text())
            connection.execute(
                "INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            done_now.append(migration)
    return done_now
