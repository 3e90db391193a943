"""`ferry login`: asks for the password and saves the server, user id and token."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from ferry.client.api import (
    DEFAULT_SERVER,
    ClientError,
    FerryClient,
    config_path,
    load_saved,
    normalize_server,
    resolve_target,
    save_login,
)
from ferry.client.render import out


def _read_password() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("Password: ")
    line = sys.stdin.readline()
    if not line:
        raise ClientError("no password on standard input")
    return line.rstrip("\r\n")


def cmd_login(args: argparse.Namespace) -> int:
    path = config_path()
    saved = load_saved(path)
    server = normalize_server(
        args.server or os.environ.get("FERRY_URL") or saved.get("server") or DEFAULT_SERVER
    )
    user = args.user or saved.get("username")
    if not user:
        if not sys.stdin.isatty():
            raise ClientError("give the user name with --user")
        user = input("User: ").strip()
    data = FerryClient(resolve_target(server, None, {}, {})).login(user, _read_password())
    save_login(path, server, user, data["userId"], data["authToken"])
    out.print(f"Logged in to {server} as {user}; credentials saved in {path}")
    return 0
