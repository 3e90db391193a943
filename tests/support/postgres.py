"""A throwaway PostgreSQL cluster for tests: a temp directory, a free loopback port.

Run as root, the server runs as the `postgres` user (PostgreSQL refuses root); the
cluster and its socket directory are handed to that user first.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

from storage.postgres import migrate

_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
TEMPLATE = "ferry_template"


def bin_dir() -> Path | None:
    """The newest installed server's bin directory (initdb and pg_ctl), None if none."""
    for directory in _BIN_DIRS:
        if (directory / "initdb").exists():
            return directory
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """initdb + pg_ctl start; `database()` hands out fresh databases with the schema applied."""

    def __init__(self, binaries: Path):
        self._bin = binaries
        self._dir = Path(tempfile.mkdtemp(prefix="ferry-pg-"))
        self._data = self._dir / "data"
        self.port = _free_port()
        self._names = itertools.count(1)
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self._dir, account.pw_uid, account.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as_user, *command], check=True, capture_output=True, cwd=self._dir)

    def start(self) -> None:
        self._run(
            str(self._bin / "initdb"),
            "-D",
            str(self._data),
            "-U",
            "ferry",
            "--auth=trust",
            "--no-sync",
            "--locale=C.UTF-8",
            "--encoding=UTF8",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self._dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            str(self._bin / "pg_ctl"),
            "-D",
            str(self._data),
            "-o",
            options,
            "-l",
            str(self._dir / "server.log"),
            "-w",
            "start",
        )
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {TEMPLATE}")
        with psycopg.connect(self.url(TEMPLATE), autocommit=True) as connection:
            migrate.upgrade(connection)

    def url(self, name: str) -> str:
        return f"postgresql://ferry@127.0.0.1:{self.port}/{name}"

    def database(self, *, migrated: bool = True) -> str:
        """A new, empty database's URL (with the schema applied unless `migrated` is off)."""
        name = f"ferry_test_{next(self._names)}"
        template = TEMPLATE if migrated else "template0"
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self._bin / "pg_ctl"), "-D", str(self._data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Databases:
    """One cluster per test process, started on first use; databases dropped per test."""

    def __init__(self):
        self._cluster: Cluster | None = None
        self._handed_out: list[str] = []

    @property
    def available(self) -> bool:
        return bin_dir() is not None

    def new(self, *, migrated: bool = True) -> str:
        if self._cluster is None:
            binaries = bin_dir()
            if binaries is None:
                raise RuntimeError("PostgreSQL is not installed (no initdb found)")
            cluster = Cluster(binaries)
            cluster.start()
            self._cluster = cluster
        url = self._cluster.database(migrated=migrated)
        self._handed_out.append(url)
        return url

    def drop_handed_out(self) -> None:
        while self._handed_out:
            self._cluster.drop(self._handed_out.pop())

    def stop(self) -> None:
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None


# Every test in a process shares this; tests/conftest.py stops it at the session's end.
databases = Databases()

# Set to "postgresql" to run the app-level tests (tests/api) on PostgreSQL.
BACKEND_VARIABLE = "FERRY_TEST_BACKEND"
SKIP_REASON = "PostgreSQL is not installed here (no initdb in /usr/lib/postgresql/*/bin or PATH)"


def stored_records(services) -> str:
    """Everything the server keeps about users, tokens and import operations, as text,
    from whichever backend it runs on."""
    if services.store.kind == "tinydb":
        return "".join(
            (services.config.state_dir / f"{name}.json").read_text()
            for name in ("accounts", "imports")
            if (services.config.state_dir / f"{name}.json").exists()
        )
    with psycopg.connect(services.config.database_url) as connection:
        return "".join(
            str(connection.execute(f"SELECT * FROM {table}").fetchall())
            for table in ("users", "tokens", "operations")
        )
