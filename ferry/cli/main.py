"""The `ferry` command: the server's commands and the client's, under one parser."""

from __future__ import annotations

import argparse
import sys
import warnings

from ferry import __version__
from ferry.cli.db import add_db_commands
from ferry.cli.serve import add_serve_command
from ferry.cli.users import add_users_command
from ferry.cli.worker import add_worker_command
from ferry.client.commands import add_client_commands
from ferry.kernel.errors import FerryError
from ferry.kernel.logs import configure_logging
from storage.backends import DatabaseUnavailable
from storage.store import DataDirLocked

# Connexion imports Starlette's test client at start-up, which warns about httpx; a
# server's users should not see a test-tooling notice every time it starts.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferry", description="Ferry: files and chat workspaces, brought in."
    )
    parser.add_argument("--version", action="version", version=f"ferry {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_serve_command(subparsers)
    add_worker_command(subparsers)
    add_users_command(subparsers)
    add_db_commands(subparsers)
    add_client_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_logging("text")
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (DataDirLocked, DatabaseUnavailable) as exc:
        print(f"ferry: {exc}", file=sys.stderr)
        return 1
    except FerryError as exc:
        print(f"ferry: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
