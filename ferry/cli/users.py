"""`ferry users ...`: manage users on a data directory while the server is stopped.

These commands open the services and nothing more: no recovery runs and no download
or import is touched, so a crash's leftovers wait for the next `ferry serve`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import getpass
import os
import sys
from pathlib import Path

from ferry.cli.flags import config_from
from ferry.kernel.statuses import Role


def add_users_command(subparsers) -> None:
    users = subparsers.add_parser("users", help="manage users (while the server is stopped)")
    users.add_argument(
        "--data-dir", type=Path, help="data directory [env FERRY_DATA_DIR; default: data]"
    )
    actions = users.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a user")
    create.add_argument("username")
    create.add_argument("--email")
    create.add_argument("--name")
    create.add_argument("--role", action="append", choices=list(Role), dest="roles")
    create.add_argument("--password", help="prompted for when omitted")
    create.set_defaults(run=_users_create)
    set_password = actions.add_parser("set-password", help="set a user's password")
    set_password.add_argument("username")
    set_password.add_argument("--password", help="prompted for when omitted")
    set_password.set_defaults(run=_users_set_password)
    token = actions.add_parser(
        "token", help="print a new auth token for a user (it works for FERRY_TOKEN_TTL)"
    )
    token.add_argument("username")
    token.set_defaults(run=_users_token)


@contextlib.contextmanager
def _opened_services(args: argparse.Namespace):
    from ferry.services import Services

    # The server's FERRY_* settings apply (FERRY_TOKEN_TTL for new tokens, FERRY_DATA_DIR).
    config = config_from(argparse.Namespace(), dict(os.environ))
    if args.data_dir:
        config = dataclasses.replace(config, data_dir=args.data_dir)
    services = Services.open(config)
    try:
        yield services
    finally:
        services.close()


def _password(args: argparse.Namespace) -> str:
    if args.password:
        return args.password
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise SystemExit("ferry: the passwords differ")
    return first


def _users_create(args: argparse.Namespace) -> int:
    with _opened_services(args) as services:
        user = services.accounts.create_user(
            args.username,
            email=args.email,
            name=args.name,
            password=_password(args),
            roles=args.roles,
        )
    print(f"created {user['username']} ({user['_id']}) with roles {', '.join(user['roles'])}")
    return 0


def _users_set_password(args: argparse.Namespace) -> int:
    with _opened_services(args) as services:
        services.accounts.set_password(args.username, _password(args))
    print(f"password set for {args.username}")
    return 0


def _users_token(args: argparse.Namespace) -> int:
    with _opened_services(args) as services:
        user = services.accounts.find_user(username=args.username)
        token = services.accounts.issue_token(user["_id"])
    print(f"X-User-Id: {user['_id']}\nX-Auth-Token: {token}")
    return 0
