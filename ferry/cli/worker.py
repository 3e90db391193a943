"""`ferry worker`: runs download jobs from a PostgreSQL database, with no HTTP server."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from ferry import __version__
from ferry.cli.flags import WORKER_FLAGS, add_flags, config_from
from ferry.downloads.policy import FetchError
from ferry.kernel.logs import configure_logging
from storage.backends import DatabaseUnavailable


def add_worker_command(subparsers) -> None:
    worker = subparsers.add_parser(
        "worker",
        help="run download and import jobs (PostgreSQL only), no HTTP",
        description=(
            "Claim and run the downloads, import preparations, imports and pending files "
            "any `ferry serve` on the same database queued. Needs --database-url and a "
            "--data-dir shared with the servers. SIGTERM stops it: a download that can "
            "resume, and import work, are handed back to the other workers. Each flag "
            "may also be set by its FERRY_* variable."
        ),
    )
    add_flags(worker, WORKER_FLAGS)
    worker.set_defaults(run=_work)


def _work(args: argparse.Namespace) -> int:
    from ferry.ops import allocator
    from ferry.services import Services

    allocator.limit_arenas(dict(os.environ))
    config = config_from(args, dict(os.environ))
    configure_logging(config.log_format)
    if not config.database_url:
        print(
            "ferry: ferry worker needs --database-url (PostgreSQL): with TinyDB, "
            "ferry serve runs the downloads itself",
            file=sys.stderr,
        )
        return 2
    try:
        services = Services.open(config)
    except DatabaseUnavailable as exc:
        print(f"ferry: {exc}", file=sys.stderr)
        return 1
    except FetchError as exc:
        print(f"ferry: --webhook-url: {exc.message}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: stop.set())
    try:
        services.start_worker()
        print(
            f"Ferry {__version__} worker {services.downloads.worker_id} running downloads "
            "and imports "
            f"(files: {config.data_dir})",
            flush=True,
        )
        while not stop.wait(1):
            pass
    finally:
        services.close()
    print("Ferry worker stopped.", flush=True)
    return 0
