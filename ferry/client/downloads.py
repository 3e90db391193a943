"""`ferry download`, `ferry downloads`, `ferry history` and `ferry cancel`: start downloads
on the server from URLs and input files, follow them, list them and cancel one."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Iterable

from ferry.client.api import ApiError, FerryClient, client_for
from ferry.client.live import EventStream, download_updates
from ferry.client.render import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    LOGIN_HINT,
    DownloadProgress,
    bytes_text,
    download_fields,
    download_progress,
    duration_text,
    err,
    out,
    outcome_line,
    print_table,
    timestamp_text,
)
from ferry.kernel.statuses import FINAL_DOWNLOAD_STATUSES, DownloadStatus

# The status shown for a download whose record the server no longer has.
LOST_DOWNLOAD = "unknown"


# --- ferry download ----------------------------------------------------------------------


def urls_from_lines(lines: Iterable[str]) -> list[str]:
    """The URLs of an input file: one a line; blank lines and `#` comments skipped."""
    stripped = (line.strip() for line in lines)
    return [line for line in stripped if line and not line.startswith("#")]


def _read_input_file(name: str) -> list[str]:
    if name == "-":
        return urls_from_lines(sys.stdin)
    # utf-8-sig: a file saved by an editor that writes a byte-order mark still parses.
    with open(name, encoding="utf-8-sig") as lines:
        return urls_from_lines(lines)


def _check_options(args: argparse.Namespace) -> None:
    """Usage errors found from the command line alone, before anything is read or sent."""
    if args.parallel < 1:
        args.usage_error("--parallel needs at least 1")
    if args.timeout is not None and args.timeout < 1:
        args.usage_error("--timeout needs at least 1 second")
    for name in args.input_files or ():
        if name != "-" and os.path.isdir(name):
            args.usage_error(f"the input file {name} is a directory")


def _check_destination(client: FerryClient, args: argparse.Namespace) -> None:
    """`--to` must name a directory, or a path the server may create; on a file the server
    would hand that file back instead of starting a download."""
    if client.is_file(args.to):
        args.usage_error(f"--to names a file on the server, not a directory: {args.to}")


def _requested_urls(args: argparse.Namespace) -> list[str]:
    """The URLs given on the command line, then those of each --input-file, in order."""
    urls = list(args.urls)
    for name in args.input_files or ():
        try:
            urls += _read_input_file(name)
        except (OSError, UnicodeDecodeError) as exc:
            args.usage_error(f"cannot read the input file {name}: {exc}")
    if not urls:
        args.usage_error("no URL to download: give URLs, or --input-file with one URL a line")
    if args.filename and len(urls) > 1:
        args.usage_error(f"--filename names a single file, but {len(urls)} URLs were given")
    return urls


def cmd_download(args: argparse.Namespace) -> int:
    _check_options(args)
    client = client_for(args.server, args.token)
    _check_destination(client, args)
    urls = _requested_urls(args)
    if len(urls) > 1:
        return _download_many(client, urls, args)
    started = client.start_download(args.to, urls[0], args.filename, args.timeout)
    download_id = started["download_id"]
    out.print(f"Download {download_id} started: {started['path']}")
    if not args.wait:
        return 0
    try:
        return _follow_download(client, download_id, started.get("filename") or download_id)
    except KeyboardInterrupt:
        err.print(
            f"ferry: stopped watching; the download goes on (cancel it: ferry cancel {download_id})"
        )
        return EXIT_INTERRUPTED


def _follow_download(client: FerryClient, download_id: str, label: str) -> int:
    with EventStream(client) as stream, download_progress(out) as progress:
        entry = client.download(download_id)
        task = progress.add_task(label, total=None, speed=0, eta=None)
        updates = (d for d in download_updates(stream) if d["id"] == download_id)
        while entry["status"] not in FINAL_DOWNLOAD_STATUSES:
            progress.update(
                task, description=entry.get("filename") or label, **download_fields(entry)
            )
            entry = next(updates)
        if entry["status"] == DownloadStatus.COMPLETED:
            size = entry.get("total_bytes") or entry.get("current_size") or 0
            progress.update(task, completed=size, total=size, speed=0, eta=0)
    ok, line = outcome_line(entry)
    if ok:
        out.print(line)
        return 0
    err.print(f"ferry: error {line}")
    return EXIT_FAILED


def _download_many(client: FerryClient, urls: list[str], args: argparse.Namespace) -> int:
    """Starts every URL (printing the answers in the order given), then with --wait follows
    them all. A refused URL is reported and the others go on; any failure exits 1."""
    started: list[dict] = []
    failures: list[str] = []
    unauthorized = False
    try:
        for outcome in client.start_downloads(
            args.to, urls, timeout=args.timeout, connections=args.parallel
        ):
            if outcome.started is not None:
                started.append(outcome.started)
                out.print(
                    f"Download {outcome.started['download_id']} started: {outcome.started['path']}"
                )
            else:
                # Worded as the single-URL path words its failures, plus the URL.
                kind = "error " if isinstance(outcome.error, ApiError) else ""
                failures.append(f"{kind}{outcome.error} ({outcome.url})")
                err.print(f"ferry: {failures[-1]}")
                unauthorized |= getattr(outcome.error, "status", None) == 401
    except KeyboardInterrupt:
        err.print("ferry: interrupted; the downloads started above go on")
        return EXIT_INTERRUPTED
    if unauthorized:
        err.print(LOGIN_HINT)
    if not args.wait:
        if failures:
            err.print(f"ferry: {len(failures)} of {len(urls)} downloads could not be started")
        return EXIT_FAILED if failures else 0
    try:
        finished = _follow_downloads(client, started)
    except KeyboardInterrupt:
        err.print(
            "ferry: stopped watching; the downloads go on "
            "(see `ferry downloads`; cancel one with `ferry cancel ID`)"
        )
        return EXIT_INTERRUPTED
    failures += [f"error {line}" for ok, line in map(outcome_line, finished) if not ok]
    out.print(f"{len(urls) - len(failures)} completed, {len(failures)} failed")
    for line in failures:
        err.print(f"ferry: {line}")
    return EXIT_FAILED if failures else 0


def _follow_downloads(client: FerryClient, started: list[dict]) -> list[dict]:
    """A row per download until every one has ended; each that ends leaves its outcome line.

    The rows start from the active list (and the record of each download already gone
    from it), then follow the event stream. Returns the final records in the order of
    `started`.
    """
    finished: dict[str, dict] = {}
    with EventStream(client) as stream, download_progress(out) as progress:
        rows = {
            answer["download_id"]: progress.add_task(
                answer.get("filename") or answer["download_id"],
                total=None,
                speed=0,
                eta=None,
                visible=False,
            )
            for answer in started
        }

        def show(entry: dict) -> None:
            download_id = entry["id"]
            if download_id not in rows or download_id in finished:
                return
            row = rows[download_id]
            if entry["status"] in FINAL_DOWNLOAD_STATUSES or entry["status"] == LOST_DOWNLOAD:
                finished[download_id] = entry
                progress.remove_task(row)
                ok, line = outcome_line(entry)
                if out.is_terminal:
                    line = ("✓ " if ok else "✗ ") + line
                progress.console.print(line, markup=False)
                return
            progress.update(
                row, description=entry.get("filename") or download_id, **download_fields(entry)
            )

        active = {entry["id"]: entry for entry in client.active_downloads()}
        for download_id in rows:
            show(active.get(download_id) or _record_of_ended(client, download_id))
        updates = download_updates(stream)
        while len(finished) < len(rows):
            _show_what_fits(progress, [row for id_, row in rows.items() if id_ not in finished])
            show(next(updates))
    return [finished[answer["download_id"]] for answer in started]


def _record_of_ended(client: FerryClient, download_id: str) -> dict:
    try:
        return client.download(download_id)
    except ApiError as exc:
        if exc.status != 404:
            raise
        # The history keeps a bounded number of records; this one was already dropped.
        return {
            "id": download_id,
            "status": LOST_DOWNLOAD,
            "error": exc.code,
            "message": "the server no longer has a record of this download",
        }


def _show_what_fits(progress: DownloadProgress, rows: list[int]) -> None:
    """Rows beyond the terminal's height would scroll the display apart; they wait hidden,
    counted in the footer, and move up as those above end."""
    room = max(1, progress.console.size.height - 2)
    for index, row in enumerate(rows):
        progress.update(row, visible=index < room)
    hidden = len(rows) - room
    progress.footer = f"… and {hidden} more" if hidden > 0 else ""


# --- ferry downloads, history and cancel ---------------------------------------------------


def _print_downloads(entries: list[dict]) -> None:
    rows = []
    for entry in entries:
        percentage = entry.get("progress_percentage")
        rows.append(
            (
                entry["id"],
                entry["status"],
                entry.get("file_path") or "",
                bytes_text(entry.get("current_size") or 0),
                bytes_text(entry.get("expected_size")),
                f"{percentage:.0f}%" if percentage is not None else "",
                f"{bytes_text(entry.get('speed') or 0)}/s",
                duration_text(entry.get("eta")),
                entry.get("kind") or "",
            )
        )
    print_table(
        ("id", "status", "path", "done", "size", "%", "speed", "eta", "kind"),
        rows,
        right=("done", "size", "%"),
    )


def cmd_downloads(args: argparse.Namespace) -> int:
    client = client_for(args.server, args.token)
    if args.once or args.json or not out.is_terminal:
        entries = client.active_downloads()
        if args.json:
            out.print_json(data=entries)
        elif entries:
            _print_downloads(entries)
        else:
            out.print("No active downloads.")
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        _watch_downloads(client)
    return 0


def _watch_downloads(client: FerryClient) -> None:
    """Live bars for every active download until Ctrl-C; finished ones leave a line."""
    tasks: dict[str, int] = {}
    with EventStream(client) as stream, download_progress(out) as progress:
        idle = progress.add_task("no active downloads (Ctrl-C to stop)", total=None, visible=False)

        def show(entry: dict) -> None:
            download_id = entry["id"]
            if entry["status"] in FINAL_DOWNLOAD_STATUSES:
                if download_id in tasks:
                    progress.remove_task(tasks.pop(download_id))
                    ok, line = outcome_line(entry)
                    progress.console.print(("✓ " if ok else "✗ ") + line)
            else:
                if download_id not in tasks:
                    tasks[download_id] = progress.add_task(entry.get("filename") or download_id)
                progress.update(tasks[download_id], **download_fields(entry))
            progress.update(idle, visible=not tasks)

        for entry in client.active_downloads():
            show(entry)
        progress.update(idle, visible=not tasks)
        for entry in download_updates(stream):
            show(entry)


def cmd_history(args: argparse.Namespace) -> int:
    entries = client_for(args.server, args.token).history()[: args.limit]
    if args.json:
        out.print_json(data=entries)
        return 0
    if not entries:
        out.print("No finished downloads.")
        return 0
    rows = []
    for entry in entries:
        problem = entry.get("error") or ""
        if problem and entry.get("message"):
            problem = f"{problem}: {entry['message']}"
        rows.append(
            (
                timestamp_text(entry.get("end_time")),
                entry["status"],
                entry.get("file_path") or "",
                bytes_text(entry.get("total_bytes") or entry.get("current_size") or 0),
                problem,
                entry["id"],
            )
        )
    print_table(("finished", "status", "path", "size", "error", "id"), rows, right=("size",))
    return 0


FULL_DOWNLOAD_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# An ambiguous prefix lists at most this many of the downloads it matches.
CANDIDATES_SHOWN = 10


class UnknownDownload(Exception):
    pass


class AmbiguousDownload(Exception):
    def __init__(self, prefix: str, candidates: list[str]):
        self.candidates = candidates
        shown = "\n  ".join(candidates[:CANDIDATES_SHOWN])
        more = len(candidates) - CANDIDATES_SHOWN
        super().__init__(
            f"the download id {prefix} is ambiguous; it starts {len(candidates)} downloads:"
            f"\n  {shown}" + (f"\n  ... and {more} more" if more > 0 else "")
        )


def resolve_download_id(client: FerryClient, given: str) -> str:
    """The caller's download whose id is `given` or starts with it, as git resolves a short
    commit id: among the active downloads and the history. A full id needs no lookup."""
    given = given.strip().lower()
    if FULL_DOWNLOAD_ID.fullmatch(given):
        return given
    known = [entry["id"] for entry in client.active_downloads()]
    known += [entry["id"] for entry in client.history() if entry["id"] not in known]
    candidates = [download_id for download_id in known if download_id.startswith(given)]
    if not given or not candidates:
        raise UnknownDownload(f"no download of yours has an id starting with {given!r}")
    if len(candidates) > 1:
        raise AmbiguousDownload(given, candidates)
    return candidates[0]


def _download_id_argument(client: FerryClient, args: argparse.Namespace) -> str:
    try:
        return resolve_download_id(client, args.id)
    except (UnknownDownload, AmbiguousDownload) as exc:
        args.usage_error(str(exc))
        raise  # usage_error exits; this keeps the type checker sure of it


def cmd_cancel(args: argparse.Namespace) -> int:
    client = client_for(args.server, args.token)
    entry = client.cancel(_download_id_argument(client, args))
    out.print(f"Cancelled {entry['id']} ({entry.get('file_path') or entry.get('url')})")
    return 0
