"""The connection pool every PostgreSQL repository shares, and the JSON codec it uses."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Json, set_json_dumps, set_json_loads
from psycopg_pool import ConnectionPool

from storage.postgres import migrate
from storage.postgres.errors import DatabaseUnavailable

# The advisory lock the server that clears import leftovers holds for its life (any
# constant all Ferry processes share, distinct from the migrations' lock).
_RECOVERY_LOCK_KEY = 0x0F3E2218


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _configure(connection: psycopg.Connection) -> None:
    set_json_loads(orjson.loads, connection)
    set_json_dumps(_dumps, connection)


def document(value: Any) -> Json:
    """A record as a json parameter."""
    return Json(value, dumps=_dumps)


@dataclass
class LocalFiles:
    """What the file-based parts of storage (import staging) need from a store: where
    files go, whether to fsync them, and a lock for this process's writers."""

    state_dir: Path
    fsync: bool = True
    lock: threading.RLock = field(default_factory=threading.RLock)


class Database:
    """A pool of connections to one PostgreSQL database, with its schema up to date.

    Built by `connect`, which opens the pool and applies pending migrations.
    """

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8):
        self.url = url
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            configure=_configure,
            kwargs={"autocommit": True},
            name="ferry",
        )
        self._recovery_lock: psycopg.Connection | None = None

    def open(self) -> None:
        try:
            # One plain connection first: the pool would retry a refused one until its
            # timeout, while a wrong URL deserves its error at once.
            psycopg.connect(self.url, connect_timeout=10).close()
            self._pool.open(wait=True, timeout=10)
        except Exception as error:
            raise DatabaseUnavailable(
                f"cannot connect to the database: {_without_password(self.url)}: {error}"
            ) from None

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection in autocommit mode: each statement commits on its own."""
        with self._pool.connection() as connection:
            yield connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """A connection inside one transaction, committed when the block ends."""
        with self._pool.connection() as connection, connection.transaction():
            yield connection

    def upgrade(self) -> list[migrate.Migration]:
        with self.connection() as connection:
            return migrate.upgrade(connection)

    def status(self) -> dict:
        """The schema versions applied and still pending, and the server's version."""
        with self.connection() as connection:
            return {
                "applied": migrate.applied(connection),
                "pending": [m.version for m in migrate.pending(connection)],
                "server_version": connection.info.server_version,
            }

    def ping(self) -> bool:
        """Whether a connection answers now (what health reports)."""
        try:
            with self._pool.connection(timeout=2) as connection:
                connection.execute("SELECT 1")
            return True
        except Exception:
            return False

    def claim_import_recovery(self) -> bool:
        """Whether this process is the one server that clears import leftovers: it holds
        that until it ends or closes the database, and the others start without.

        Clearing removes half-written files no operation in progress owns (a base64
        upload being decoded has no operation yet); with several servers on one data
        directory only the first may, or it would delete another's upload in flight.
        (Work cut off needs no such turn: imports and downloads are leased jobs.)
        """
        if self._recovery_lock is not None:
            return True
        connection = psycopg.connect(self.url, autocommit=True)
        held = connection.execute(
            "SELECT pg_try_advisory_lock(%s)", (_RECOVERY_LOCK_KEY,)
        ).fetchone()[0]
        if not held:
            connection.close()
            return False
        self._recovery_lock = connection
        return True

    def close(self) -> None:
        if self._recovery_lock is not None:
            # Unlocked explicitly: a closed connection's server process lets go of its
            # locks only when it gets round to exiting, and the next server may be quicker.
            with contextlib.suppress(psycopg.Error):
                self._recovery_lock.execute("SELECT pg_advisory_unlock(%s)", (_RECOVERY_LOCK_KEY,))
            self._recovery_lock.close()
            self._recovery_lock = None
        self._pool.close()


def _without_password(url: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo(**info)


def connect(url: str, *, upgrade: bool = True) -> Database:
    """Open a pool on `url` and (unless told not to) bring its schema up to date."""
    database = Database(url)
    database.open()
    if upgrade:
        database.upgrade()
    return database
