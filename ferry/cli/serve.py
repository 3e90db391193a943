"""`ferry serve`: the one command that starts the services and the HTTP server."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys

from ferry import __version__
from ferry.cli.flags import SERVE_FLAGS, add_flags, config_from
from ferry.downloads.policy import FetchError
from ferry.kernel.errors import FerryError
from ferry.kernel.logs import configure_logging
from storage.backends import DatabaseUnavailable
from storage.store import DataDirLocked


def add_serve_command(subparsers) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the HTTP service",
        description="Run the Ferry HTTP service. Each flag may also be set by its FERRY_* var.",
    )
    add_flags(serve, SERVE_FLAGS)
    serve.set_defaults(run=_serve)


# Files the server itself keeps open (state, logs, downloads) besides its connections.
OWN_FILES = 256


def _allow_open_files(connections: int) -> None:
    """Raise the soft limit on open files to cover `connections` and the server's own
    files, up to the hard limit, so a full house of connections cannot starve the server
    of file descriptors."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + OWN_FILES
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    if raised < wanted:
        print(
            f"ferry: only {raised} open files allowed; lower --max-connections "
            f"to {max(1, raised - OWN_FILES)} or raise the limit",
            file=sys.stderr,
        )


def _stopping_server_class():
    import uvicorn

    class StoppingServer(uvicorn.Server):
        """uvicorn's server, telling the app a stop has begun before it waits for open
        connections to close: the event streams, which never end by themselves, end then."""

        def __init__(self, config, *, on_stop):
            super().__init__(config)
            self._on_stop = on_stop

        async def shutdown(self, sockets=None):
            self._on_stop()
            await super().shutdown(sockets=sockets)

    return StoppingServer


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ferry.ops import allocator, memdiag
    from ferry.services import Services
    from handlers.app import create_app
    from handlers.http_protocol import bounded_protocol

    # Before any thread starts: with glibc's default of 8 arenas per core, the free
    # memory each arena keeps grew run after run (see ferry/ops/allocator.py).
    allocator.limit_arenas(dict(os.environ))
    config = config_from(args, dict(os.environ))
    configure_logging(config.log_format)
    if config.workers == 0 and not config.database_url:
        print(
            "ferry: --workers 0 needs --database-url: with TinyDB no other process can "
            "run the downloads",
            file=sys.stderr,
        )
        return 2
    try:
        services = Services.open(config)
    except (DataDirLocked, DatabaseUnavailable) as exc:
        print(f"ferry: {exc}", file=sys.stderr)
        return 1
    except FetchError as exc:
        print(f"ferry: --webhook-url: {exc.message}", file=sys.stderr)
        return 2
    try:
        created = services.accounts.ensure_admin(config.admin_username, config.admin_password)
    except FerryError as exc:
        services.close()
        print(f"ferry: FERRY_ADMIN_PASSWORD: {exc.message}", file=sys.stderr)
        return 1
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
    _allow_open_files(config.max_connections)
    # Ferry writes its own request log (redacted, with operation and user), so uvicorn's
    # access log is off, and uvicorn's other messages go through Ferry's formatter.
    # uvicorn would take X-Forwarded-For from any local peer as the client's address;
    # Ferry reads it itself, and only from --trusted-proxies (handlers/client_address.py).
    server_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level="info",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        workers=1,
        # Limits on what clients send: see handlers/http_protocol.py.
        http=bounded_protocol(
            max_head_size=config.max_header_size,
            head_timeout=config.header_timeout,
            body_timeout=config.body_timeout,
            max_connections=config.max_connections,
        ),
        timeout_keep_alive=config.keep_alive_timeout,
        # Counts open connections and requests in flight; the protocol keeps the
        # connections at most `max_connections`, so 503 means every one is busy.
        limit_concurrency=config.max_connections + 1,
    )
    server_config.load_app()
    server = _stopping_server_class()(server_config, on_stop=services.events.close)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        # As uvicorn.run: the server never started (the port was taken, for one).
        return 3
    print("Ferry stopped.", flush=True)
    return 0
