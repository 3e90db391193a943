"""`ferry serve` and the admin commands that work on a data directory from the shell."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import signal
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry import __version__
from ferry.client.commands import add_client_commands
from ferry.kernel.config import Config
from ferry.kernel.errors import FerryError
from ferry.kernel.logs import LOG_FORMATS, configure_logging
from storage.store import DataDirLocked

# Connexion imports Starlette's test client at start-up, which warns about httpx; a
# server's users should not see a test-tooling notice every time it starts.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _domains(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _size(value: str) -> int:
    """Bytes, with an optional K/M/G/T suffix (powers of 1024)."""
    text = value.strip().upper().removesuffix("B")
    factor = 1
    for suffix, power in (("K", 1), ("M", 2), ("G", 3), ("T", 4)):
        if text.endswith(suffix):
            text, factor = text[:-1], 1024**power
            break
    try:
        size = int(float(text) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {value!r}") from None
    if size <= 0:
        raise argparse.ArgumentTypeError("a size must be positive")
    return size


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return number


def _log_format(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in LOG_FORMATS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LOG_FORMATS)}")
    return lowered


# A metrics token shorter than this is too easy to guess.
MIN_METRICS_TOKEN = 16


def _metrics_token(value: str) -> str:
    token = value.strip()
    if len(token) < MIN_METRICS_TOKEN:
        raise argparse.ArgumentTypeError(
            f"a metrics token needs at least {MIN_METRICS_TOKEN} characters"
        )
    return token


@dataclass(frozen=True)
class Flag:
    name: str
    env: str
    field: str
    help: str
    parse: Callable[[str], Any] | None = None
    switch: bool = False


# Every `ferry serve` setting: flag, environment variable, Config field. The README's
# table is checked against this list by a test.
SERVE_FLAGS = (
    Flag("--host", "FERRY_HOST", "host", "address to listen on"),
    Flag("--port", "FERRY_PORT", "port", "port to listen on", _positive_int),
    Flag("--data-dir", "FERRY_DATA_DIR", "data_dir", "served files and state live here", Path),
    Flag(
        "--allow-download",
        "FERRY_ALLOW_DOWNLOAD",
        "allow_download",
        "let users with download-files start ?download= transfers",
        _bool,
        switch=True,
    ),
    Flag(
        "--download-allowed-domains",
        "FERRY_DOWNLOAD_ALLOWED_DOMAINS",
        "download_allowed_domains",
        "comma-separated domains downloads may use (suffix match); empty means any",
        _domains,
    ),
    Flag(
        "--download-blocked-domains",
        "FERRY_DOWNLOAD_BLOCKED_DOMAINS",
        "download_blocked_domains",
        "comma-separated domains downloads may never use; wins over allowed",
        _domains,
    ),
    Flag(
        "--allow-private-networks",
        "FERRY_ALLOW_PRIVATE_NETWORKS",
        "allow_private_networks",
        "let server-side fetches reach loopback, private and link-local addresses",
        _bool,
        switch=True,
    ),
    Flag(
        "--max-download-size",
        "FERRY_MAX_DOWNLOAD_SIZE",
        "max_download_size",
        "largest file a fetch may write (bytes, or with K/M/G/T)",
        _size,
    ),
    Flag(
        "--max-concurrent-downloads",
        "FERRY_MAX_CONCURRENT_DOWNLOADS",
        "max_concurrent_downloads",
        "transfers that run at once; more wait as 'starting'",
        _positive_int,
    ),
    Flag(
        "--download-timeout",
        "FERRY_DOWNLOAD_TIMEOUT",
        "download_timeout",
        "seconds a download may take in all (?timeout= overrides it)",
        _positive_float,
    ),
    Flag(
        "--download-history-limit",
        "FERRY_DOWNLOAD_HISTORY_LIMIT",
        "download_history_limit",
        "finished downloads kept in the history",
        _positive_int,
    ),
    Flag(
        "--import-folder",
        "FERRY_IMPORT_FOLDER",
        "import_folder",
        "server folder downloadPublicImportFile may read local paths from",
        Path,
    ),
    Flag(
        "--max-upload-size",
        "FERRY_MAX_UPLOAD_SIZE",
        "max_upload_size",
        "largest import file uploadImportFile accepts (bytes, or with K/M/G/T)",
        _size,
    ),
    Flag(
        "--direct-message-max-users",
        "FERRY_DIRECT_MESSAGE_MAX_USERS",
        "direct_message_max_users",
        "Slack group DMs with at most this many members import as DMs, larger as private groups",
        _positive_int,
    ),
    Flag(
        "--metrics-token",
        "FERRY_METRICS_TOKEN",
        "metrics_token",
        "bearer token that may read /api/v1/metrics besides admins (16+ characters; "
        "prefer the variable, a flag shows in the process list)",
        _metrics_token,
    ),
    Flag(
        "--log-format",
        "FERRY_LOG_FORMAT",
        "log_format",
        "text (for people) or json (one object per line) on stderr",
        _log_format,
    ),
)


def _serve_parser(subparsers) -> None:
    defaults = Config()
    serve = subparsers.add_parser(
        "serve",
        help="run the HTTP service",
        description="Run the Ferry HTTP service. Each flag may also be set by its FERRY_* var.",
    )
    for flag in SERVE_FLAGS:
        default = getattr(defaults, flag.field)
        shown = ",".join(default) if isinstance(default, tuple) else default
        text = (
            f"{flag.help} [env {flag.env}; default: {shown if shown not in (None, '') else 'none'}]"
        )
        if flag.switch:
            serve.add_argument(
                flag.name, dest=flag.field, action="store_const", const=True, help=text
            )
        else:
            serve.add_argument(flag.name, dest=flag.field, type=flag.parse, help=text)
    serve.set_defaults(run=_serve)


def config_from(args: argparse.Namespace, environ: dict[str, str]) -> Config:
    """Flags win over FERRY_* variables, which win over Config's defaults."""
    values: dict[str, Any] = {}
    for flag in SERVE_FLAGS:
        given = getattr(args, flag.field, None)
        if given is not None:
            values[flag.field] = given
        elif environ.get(flag.env) not in (None, ""):
            parse = flag.parse or str
            try:
                values[flag.field] = parse(environ[flag.env])
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise SystemExit(f"ferry: {flag.env}: {exc}") from None
    values["admin_username"] = environ.get("FERRY_ADMIN_USERNAME") or None
    values["admin_password"] = environ.get("FERRY_ADMIN_PASSWORD") or None
    return Config(**values)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ferry.ops import allocator, memdiag
    from ferry.services import Services
    from handlers.app import create_app

    # Before any thread starts: with glibc's default of 8 arenas per core, the free
    # memory each arena keeps grew run after run (see ferry/allocator.py).
    allocator.limit_arenas(dict(os.environ))
    config = config_from(args, dict(os.environ))
    configure_logging(config.log_format)
    try:
        services = Services.open(config)
    except DataDirLocked as exc:
        print(f"ferry: {exc}", file=sys.stderr)
        return 1
    created = services.accounts.ensure_admin(config.admin_username, config.admin_password)
    if created:
        user, password = created
        shown = "(from FERRY_ADMIN_PASSWORD)" if config.admin_password else password
        print(
            "Created the first admin. Log in with:\n"
            f"  username: {user['username']}\n"
            f"  password: {shown}\n"
            "This password is shown only once.",
            flush=True,
        )
    print(
        f"Ferry {__version__} on http://{config.host}:{config.port}/ "
        f"(API docs: http://{config.host}:{config.port}/api/v1/ui/, data: {config.data_dir})",
        flush=True,
    )
    app = create_app(config, services=services)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal under the
    # handler that was there before it; a no-op one lets a clean stop exit with status 0.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)
    # Off unless FERRY_MEMORY_DIAGNOSTICS is set. Installed after start-up, which
    # allocation tracing (FERRY_MEMORY_TRACE) would slow down several times.
    memdiag.install_from_env(dict(os.environ))
    # Ferry writes its own request log (redacted, with operation and user), so uvicorn's
    # access log is off, and uvicorn's other messages go through Ferry's formatter.
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level="info",
        log_config=None,
        access_log=False,
        workers=1,
    )
    print("Ferry stopped.", flush=True)
    return 0


def _users_parser(subparsers) -> None:
    users = subparsers.add_parser("users", help="manage users (while the server is stopped)")
    users.add_argument(
        "--data-dir", type=Path, help="data directory [env FERRY_DATA_DIR; default: data]"
    )
    actions = users.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a user")
    create.add_argument("username")
    create.add_argument("--email")
    create.add_argument("--name")
    create.add_argument("--role", action="append", choices=["admin", "user", "bot"], dest="roles")
    create.add_argument("--password", help="prompted for when omitted")
    create.set_defaults(run=_users_create)
    set_password = actions.add_parser("set-password", help="set a user's password")
    set_password.add_argument("username")
    set_password.add_argument("--password", help="prompted for when omitted")
    set_password.set_defaults(run=_users_set_password)
    token = actions.add_parser("token", help="print a new auth token for a user")
    token.add_argument("username")
    token.set_defaults(run=_users_token)


@contextlib.contextmanager
def _opened_services(args: argparse.Namespace):
    from ferry.services import Services

    data_dir = args.data_dir or Path(os.environ.get("FERRY_DATA_DIR") or "data")
    services = Services.open(Config(data_dir=data_dir))
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferry", description="Ferry: files and chat workspaces, brought in."
    )
    parser.add_argument("--version", action="version", version=f"ferry {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _serve_parser(subparsers)
    _users_parser(subparsers)
    add_client_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_logging("text")
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except DataDirLocked as exc:
        print(f"ferry: {exc}", file=sys.stderr)
        return 1
    except FerryError as exc:
        print(f"ferry: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
