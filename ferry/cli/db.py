"""`ferry db upgrade|status` and `ferry migrate-storage`: the PostgreSQL backend's chores."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _database_url(args: argparse.Namespace) -> str:
    url = args.database_url or os.environ.get("FERRY_DATABASE_URL")
    if not url:
        raise SystemExit("ferry: give --database-url or set FERRY_DATABASE_URL")
    return url


def _add_url(parser: argparse.ArgumentParser, flag: str = "--database-url") -> None:
    parser.add_argument(
        flag,
        dest="database_url",
        metavar="postgresql://...",
        help="the PostgreSQL database [env FERRY_DATABASE_URL]",
    )


def add_db_commands(subparsers) -> None:
    database = subparsers.add_parser("db", help="the PostgreSQL database's schema")
    actions = database.add_subparsers(dest="action", required=True)
    upgrade = actions.add_parser("upgrade", help="apply the schema migrations not yet applied")
    _add_url(upgrade)
    upgrade.set_defaults(run=_upgrade)
    status = actions.add_parser(
        "status", help="print the schema versions applied and pending (exit 1 when any pend)"
    )
    _add_url(status)
    status.set_defaults(run=_status)

    migrate = subparsers.add_parser(
        "migrate-storage",
        help="copy a TinyDB data directory's records into an empty PostgreSQL database",
    )
    migrate.add_argument("--from", dest="data_dir", type=Path, required=True, metavar="DATA_DIR")
    _add_url(migrate, "--to")
    migrate.set_defaults(run=_migrate_storage)


def _upgrade(args: argparse.Namespace) -> int:
    from storage.postgres.connection import connect

    database = connect(_database_url(args), upgrade=False)
    try:
        applied = database.upgrade()
        status = database.status()
    finally:
        database.close()
    for migration in applied:
        print(f"applied {migration.version:04d} {migration.name}")
    print(f"schema version {max(status['applied'], default=0)}, up to date")
    return 0


def _status(args: argparse.Namespace) -> int:
    from storage.postgres.connection import connect

    database = connect(_database_url(args), upgrade=False)
    try:
        status = database.status()
    finally:
        database.close()
    print(f"server version: {status['server_version']}")
    print(f"applied: {', '.join(map(str, status['applied'])) or 'none'}")
    print(f"pending: {', '.join(map(str, status['pending'])) or 'none'}")
    return 1 if status["pending"] else 0


def _migrate_storage(args: argparse.Namespace) -> int:
    from storage.relocation import TargetNotEmpty, migrate_storage

    if not (args.data_dir / "state").is_dir():
        raise SystemExit(f"ferry: {args.data_dir} holds no state/ directory: nothing to migrate")
    try:
        copied = migrate_storage(args.data_dir, _database_url(args))
    except TargetNotEmpty as error:
        print(f"ferry: {error}", file=sys.stderr)
        return 1
    for kind, count in copied.items():
        print(f"{kind}: {count}")
    print("every record is in the database: start ferry serve with --database-url")
    return 0
