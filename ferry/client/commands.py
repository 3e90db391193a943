"""The client commands of `ferry`: login, download, downloads, history, cancel, import.

They talk to a running server through `ferry.client`; this module parses, prompts and
renders (with rich: live progress bars on a terminal, plain lines and tables elsewhere).
Every failure prints the server's code and message on stderr and exits non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import getpass
import os
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
)
from rich.table import Table
from rich.text import Text

from ferry.client.api import (
    DEFAULT_SERVER,
    ApiError,
    ClientError,
    ConnectionFailed,
    FerryClient,
    config_path,
    load_saved,
    normalize_server,
    resolve_target,
    save_login,
)

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
POLL_SECONDS = 0.5
FINISHED_DOWNLOAD = {"completed", "failed", "cancelled"}
# The status shown for a download whose record the server no longer has.
LOST_DOWNLOAD = "unknown"
IMPORT_FINAL = {"importer_done", "importer_import_failed", "importer_import_cancelled"}
SHOWN_ROWS = 15
LOGIN_HINT = "ferry: log in with `ferry login`, or pass --token / FERRY_TOKEN"

# soft_wrap: lines are never broken mid-message when the output is a file or a pipe.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


# --- plumbing -----------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> FerryClient:
    saved = load_saved(config_path())
    return FerryClient(resolve_target(args.server, args.token, os.environ, saved))


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turns the client's exceptions into a message on stderr and an exit status."""
    hint_login = command.__name__ != "cmd_login"

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except ApiError as exc:
            err.print(f"ferry: error {exc.code}" + (f": {exc.message}" if exc.message else ""))
            if exc.status == 401 and hint_login:
                err.print(LOGIN_HINT)
            return EXIT_FAILED
        except ConnectionFailed as exc:
            err.print(f"ferry: {exc}")
            return EXIT_FAILED
        except ClientError as exc:
            err.print(f"ferry: {exc}")
            return EXIT_FAILED
        except KeyboardInterrupt:
            err.print("ferry: interrupted")
            return EXIT_INTERRUPTED

    return run


def _when(stamp: float | int | None) -> str:
    if not stamp:
        return ""
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | int | None) -> str:
    if seconds is None:
        return "-:--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _bytes(count: float | int | None) -> str:
    return decimal(int(count)) if count is not None else "?"


def print_table(
    columns: tuple[str, ...], rows: Iterable[tuple[str, ...]], right: Iterable[str] = ()
) -> None:
    """A rich table on a terminal; tab-separated lines (never cut) in a pipe or file."""
    if not out.is_terminal:
        for row in (columns, *rows):
            out.print("\t".join(row), markup=False)
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(
            column,
            justify="right" if column in right else "left",
            no_wrap=column in ("id", "finished"),
        )
    for row in rows:
        table.add_row(*row)
    out.print(table)


# --- progress columns fed by the server's own figures ------------------------------------


class ServerSpeedColumn(ProgressColumn):
    """The server's measured `speed`, not rich's estimate from our polling."""

    def render(self, task: Task) -> Text:
        speed = task.fields.get("speed")
        shown = f"{decimal(int(speed))}/s" if speed is not None else "?/s"
        return Text(shown, style="progress.data.speed")


class ServerEtaColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        if "eta" not in task.fields:
            return Text("")
        return Text(f"ETA {_duration(task.fields['eta'])}", style="progress.remaining")


class DownloadProgress(Progress):
    """Progress rows with an optional line of text below them."""

    footer = ""

    def get_renderables(self):
        yield from super().get_renderables()
        if self.footer:
            yield Text(self.footer, style="progress.remaining")


def _download_progress(console: Console) -> DownloadProgress:
    return DownloadProgress(
        TextColumn("[bold]{task.description}", table_column=None),
        BarColumn(bar_width=30),
        TaskProgressColumn(),
        DownloadColumn(),
        ServerSpeedColumn(),
        ServerEtaColumn(),
        console=console,
        refresh_per_second=8,
        disable=not console.is_terminal,
    )


def _download_fields(entry: dict) -> dict:
    return {
        "completed": entry.get("current_size") or 0,
        "total": entry.get("expected_size"),
        "speed": entry.get("speed") or 0,
        "eta": entry.get("eta"),
    }


def _outcome_line(entry: dict) -> tuple[bool, str]:
    """(completed?, a line): `completed PATH (SIZE in T)` or `CODE: message (PATH STATUS)`."""
    status = entry.get("status")
    where = entry.get("file_path") or entry.get("filename") or entry.get("id")
    if status == "completed":
        took = (entry.get("end_time") or 0) - (entry.get("start_time") or 0)
        size = entry.get("total_bytes") or entry.get("current_size")
        return True, f"completed {where} ({_bytes(size)} in {_duration(max(took, 0))})"
    code = entry.get("error") or str(status).upper()
    message = entry.get("message")
    return False, f"{code}" + (f": {message}" if message else "") + f" ({where} {status})"


# --- login ----------------------------------------------------------------------------------


def _read_password() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("Password: ")
    line = sys.stdin.readline()
    if not line:
        raise ClientError("no password on standard input")
    return line.rstrip("\r\n")


@_guarded
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


# --- downloads ---------------------------------------------------------------------------


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


def _requested_urls(args: argparse.Namespace) -> list[str]:
    """The URLs given on the command line, then those of each --input-file, in order."""
    if args.parallel < 1:
        args.usage_error("--parallel needs at least 1")
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


@_guarded
def cmd_download(args: argparse.Namespace) -> int:
    urls = _requested_urls(args)
    client = _client(args)
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
    with _download_progress(out) as progress:
        task = progress.add_task(label, total=None, speed=0, eta=None)
        while True:
            entry = client.download(download_id)
            progress.update(task, description=entry.get("filename") or label)
            if entry["status"] in FINISHED_DOWNLOAD:
                if entry["status"] == "completed":
                    size = entry.get("total_bytes") or entry.get("current_size") or 0
                    progress.update(task, completed=size, total=size, speed=0, eta=0)
                break
            progress.update(task, **_download_fields(entry))
            time.sleep(POLL_SECONDS / 2)
    ok, line = _outcome_line(entry)
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
    failures += [f"error {line}" for ok, line in map(_outcome_line, finished) if not ok]
    out.print(f"{len(urls) - len(failures)} completed, {len(failures)} failed")
    for line in failures:
        err.print(f"ferry: {line}")
    return EXIT_FAILED if failures else 0


def _follow_downloads(client: FerryClient, started: list[dict]) -> list[dict]:
    """A row per download until every one has ended; each that ends leaves its outcome line.

    One poll asks for the active list, plus one record for each download that has left
    it. Returns the final records in the order of `started`.
    """
    finished: dict[str, dict] = {}
    with _download_progress(out) as progress:
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
        _show_what_fits(progress, list(rows.values()))
        while True:
            active = {entry["id"]: entry for entry in client.active_downloads()}
            for download_id, row in rows.items():
                if download_id in finished:
                    continue
                entry = active.get(download_id) or _record_of_ended(client, download_id)
                if entry["status"] in FINISHED_DOWNLOAD or entry["status"] == LOST_DOWNLOAD:
                    finished[download_id] = entry
                    progress.remove_task(row)
                    ok, line = _outcome_line(entry)
                    if out.is_terminal:
                        line = ("✓ " if ok else "✗ ") + line
                    progress.console.print(line, markup=False)
                    continue
                progress.update(
                    row, description=entry.get("filename") or download_id, **_download_fields(entry)
                )
            if len(finished) == len(rows):
                break
            _show_what_fits(progress, [row for id_, row in rows.items() if id_ not in finished])
            time.sleep(POLL_SECONDS)
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


def _print_downloads(entries: list[dict]) -> None:
    rows = []
    for entry in entries:
        percentage = entry.get("progress_percentage")
        rows.append(
            (
                entry["id"],
                entry["status"],
                entry.get("file_path") or "",
                _bytes(entry.get("current_size") or 0),
                _bytes(entry.get("expected_size")),
                f"{percentage:.0f}%" if percentage is not None else "",
                f"{_bytes(entry.get('speed') or 0)}/s",
                _duration(entry.get("eta")),
                entry.get("kind") or "",
            )
        )
    print_table(
        ("id", "status", "path", "done", "size", "%", "speed", "eta", "kind"),
        rows,
        right=("done", "size", "%"),
    )


@_guarded
def cmd_downloads(args: argparse.Namespace) -> int:
    client = _client(args)
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
    with _download_progress(out) as progress:
        idle = progress.add_task("no active downloads (Ctrl-C to stop)", total=None, visible=False)
        while True:
            entries = {entry["id"]: entry for entry in client.active_downloads()}
            for download_id in [known for known in tasks if known not in entries]:
                progress.remove_task(tasks.pop(download_id))
                try:
                    ok, line = _outcome_line(client.download(download_id))
                except ApiError:
                    ok, line = True, f"finished {download_id}"
                progress.console.print(("✓ " if ok else "✗ ") + line)
            for download_id, entry in entries.items():
                if download_id not in tasks:
                    tasks[download_id] = progress.add_task(entry.get("filename") or download_id)
                progress.update(tasks[download_id], **_download_fields(entry))
            progress.update(idle, visible=not tasks)
            time.sleep(POLL_SECONDS)


@_guarded
def cmd_history(args: argparse.Namespace) -> int:
    entries = _client(args).history()[: args.limit]
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
                _when(entry.get("end_time")),
                entry["status"],
                entry.get("file_path") or "",
                _bytes(entry.get("total_bytes") or entry.get("current_size") or 0),
                problem,
                entry["id"],
            )
        )
    print_table(("finished", "status", "path", "size", "error", "id"), rows, right=("size",))
    return 0


@_guarded
def cmd_cancel(args: argparse.Namespace) -> int:
    entry = _client(args).cancel(args.id)
    out.print(f"Cancelled {entry['id']} ({entry.get('file_path') or entry.get('url')})")
    return 0


# --- import -------------------------------------------------------------------------------


def _step_label(step: str | None) -> str:
    return (step or "").removeprefix("importer_").replace("_", " ")


@_guarded
def cmd_import(args: argparse.Namespace) -> int:
    if args.source == "status" and not args.importer:
        return _import_status(_client(args))
    if not args.importer:
        raise ClientError("name the importer with --importer (csv, slack, ...)")
    if args.all and args.select:
        raise ClientError("give --all or --select, not both")
    client = _client(args)
    source = args.source
    if source.startswith(("http://", "https://")) or args.server_path:
        client.import_from_url(source, args.importer, args.password)
        out.print(f"The server is fetching {source}")
    else:
        _upload(client, Path(source), args.importer, args.password)
    data = _wait_until_prepared(client)
    _show_file_data(data)
    selection = _choose(args, data)
    if selection is None:
        out.print("Nothing imported: pass --all or --select to import.")
        return 0
    client.start_import(selection)
    try:
        return _follow_import(client)
    except KeyboardInterrupt:
        err.print("ferry: stopped watching; the import goes on (see `ferry import status`)")
        return EXIT_INTERRUPTED


def _upload(client: FerryClient, path: Path, importer: str, password: str | None) -> None:
    if not path.is_file():
        raise ClientError(f"no such file: {path} (a URL must start with http:// or https://)")
    size = path.stat().st_size
    with Progress(
        TextColumn("uploading [bold]{task.description}"),
        BarColumn(bar_width=30),
        TaskProgressColumn(),
        DownloadColumn(),
        console=out,
        transient=True,
        disable=not out.is_terminal,
    ) as progress:
        task = progress.add_task(path.name, total=size)
        client.upload_import(
            path, importer, password, lambda sent: progress.update(task, completed=sent)
        )
    out.print(f"Uploaded {path.name} ({_bytes(size)})")


def _wait_until_prepared(client: FerryClient) -> dict:
    """Polls import.status until the file is parsed; shows the step and any download."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[detail]}", style="progress.download"),
        console=out,
        transient=True,
        disable=not out.is_terminal,
    ) as progress:
        task = progress.add_task("waiting for the server", detail="")
        operation_id = None
        while True:
            status = client.import_status()
            operation = status.get("operation") or {}
            if operation_id is None:
                operation_id = operation.get("_id")
            elif operation.get("_id") != operation_id:
                raise ClientError("another import replaced this one on the server")
            state = status["state"]
            if state in ("error", "canceled", "none"):
                reason = operation.get("error") or f"the operation ended as {state}"
                raise ClientError(f"preparing the import failed: {reason}")
            if state not in ("new", "loading"):
                break
            step = operation.get("status")
            detail = ""
            if step == "importer_downloading_file":
                fetching = []
                with contextlib.suppress(ApiError):  # the list needs view-files
                    fetching = [d for d in client.active_downloads() if d.get("kind") == "import"]
                if fetching:
                    done, total = fetching[0].get("current_size"), fetching[0].get("expected_size")
                    detail = _bytes(done) + (f" / {_bytes(total)}" if total else "")
            progress.update(task, description=_step_label(step), detail=detail)
            time.sleep(POLL_SECONDS / 2)
    while True:
        data = client.import_file_data()
        if not data.get("waiting"):
            return data
        time.sleep(POLL_SECONDS / 2)


def _show_file_data(data: dict) -> None:
    users, channels = data.get("users") or [], data.get("channels") or []
    out.print(
        f"Prepared ({data.get('name', 'import')}): {len(users)} users, "
        f"{len(channels)} channels, {data.get('message_count', 0)} messages"
    )
    _numbered(
        "users",
        ("username", "email", "notes"),
        [
            (
                u.get("username") or u["user_id"],
                u.get("email") or "",
                ", ".join(
                    note
                    for note, flag in (
                        ("bot", u.get("is_bot")),
                        ("deleted", u.get("is_deleted")),
                        ("email taken", u.get("is_email_taken")),
                    )
                    if flag
                ),
            )
            for u in users
        ],
    )
    _numbered(
        "channels",
        ("name", "kind"),
        [
            (
                c.get("name") or c["channel_id"],
                "direct messages"
                if c.get("is_direct")
                else ("private" if c.get("is_private") else "public")
                + (", archived" if c.get("is_archived") else ""),
            )
            for c in channels
        ],
    )


def _numbered(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    if not rows:
        return
    out.print(f"{title}:")
    numbered = [(str(n), *row) for n, row in enumerate(rows[:SHOWN_ROWS], start=1)]
    print_table(("#", *columns), numbered, right=("#",))
    if len(rows) > SHOWN_ROWS:
        out.print(f"  … and {len(rows) - SHOWN_ROWS} more {title}")


def parse_choice(text: str, count: int) -> list[int]:
    """'all', 'none', or numbers and ranges ('1,3-5') → zero-based indexes."""
    text = text.strip().lower()
    if text in ("", "all", "a", "*"):
        return list(range(count))
    if text in ("none", "-", "0"):
        return []
    chosen: set[int] = set()
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if not 1 <= low <= high <= count:
            raise ValueError(f"{part} is outside 1-{count}")
        chosen.update(range(low - 1, high))
    return sorted(chosen)


def _ask(kind: str, count: int) -> list[int]:
    if count == 0:
        return []
    while True:
        try:
            answer = input(
                f"{kind.capitalize()} to import (1-{count}, e.g. 1,3-5; all; none) [all]: "
            )
            if not sys.stdin.isatty():
                out.print(answer, markup=False)
        except EOFError:
            raise ClientError("no answer on standard input; nothing imported") from None
        try:
            return parse_choice(answer, count)
        except ValueError as exc:
            err.print(f"  not understood: {exc}")


def _choose(args: argparse.Namespace, data: dict) -> dict | None:
    users, channels = data.get("users") or [], data.get("channels") or []
    if args.all:
        return {"users": {"all": True}, "channels": {"all": True}}
    if not args.select:
        if not sys.stdin.isatty():
            return None
        answer = input("Import everything? [y]es, [s]elect, [n]o: ").strip().lower()
        if answer in ("y", "yes"):
            return {"users": {"all": True}, "channels": {"all": True}}
        if answer not in ("s", "select"):
            return None
    picked_users = _ask("users", len(users))
    picked_channels = _ask("channels", len(channels))

    def part(items: list[dict], picked: list[int], key: str) -> dict:
        if len(picked) == len(items):
            return {"all": True}
        return {"all": False, "list": [items[index][key] for index in picked]}

    return {
        "users": part(users, picked_users, "user_id"),
        "channels": part(channels, picked_channels, "channel_id"),
    }


def _follow_import(client: FerryClient) -> int:
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=30),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]} [red]{task.fields[errors]}"),
        console=out,
        disable=not out.is_terminal,
    ) as progress:
        task = progress.add_task("import starting", total=None, errors="", counts="")
        while True:
            current = client.import_progress()
            count = current.get("count") or {}
            progress.update(
                task,
                description=_step_label(current.get("step")),
                completed=count.get("completed", 0),
                total=count.get("total") or None,
                errors=f"{count['error']} errors" if count.get("error") else "",
                counts=f"{count.get('completed', 0)}/{count.get('total', 0)}",
            )
            if current.get("step") in IMPORT_FINAL:
                break
            time.sleep(POLL_SECONDS / 2)
    operation = client.import_status().get("operation") or {}
    if current["step"] != "importer_done":
        reason = operation.get("error") or _step_label(current["step"])
        err.print(f"ferry: error {_step_label(current['step'])}: {reason}")
        return EXIT_FAILED
    out.print("Import done. " + _report_line(operation.get("report") or {}))
    for sample in (operation.get("report") or {}).get("error_samples", [])[:5]:
        err.print(f"  problem: {sample}")
    return 0


def _report_line(report: dict) -> str:
    parts = [
        f"users: {report.get('users_created', 0)} created, {report.get('users_updated', 0)} "
        f"updated, {report.get('users_skipped', 0)} skipped",
        f"rooms: {report.get('rooms_created', 0)} created, {report.get('rooms_updated', 0)} "
        f"updated, {report.get('rooms_skipped', 0)} skipped",
        f"messages: {report.get('messages_imported', 0)} imported, "
        f"{report.get('messages_skipped', 0)} skipped",
    ]
    if report.get("errors"):
        parts.append(f"errors: {report['errors']}")
    return "; ".join(parts)


def _import_status(client: FerryClient) -> int:
    status = client.import_status()
    operation = status.get("operation")
    out.print(f"state: {status['state']}")
    if not operation:
        return 0
    count = operation.get("count") or {}
    lines = [
        ("operation", operation.get("_id")),
        ("importer", operation.get("importerKey")),
        ("file", operation.get("file")),
        ("step", operation.get("status")),
        ("updated", operation.get("_updatedAt")),
        (
            "counts",
            ", ".join(f"{key} {value}" for key, value in count.items()) if count else None,
        ),
        ("error", operation.get("error")),
    ]
    for label, value in lines:
        if value:
            out.print(f"{label}: {value}")
    if operation.get("report"):
        out.print("report: " + _report_line(operation["report"]))
    for warning in (operation.get("warnings") or [])[:10]:
        out.print(f"warning: {warning}")
    return 0


# --- registration ----------------------------------------------------------------------

DOWNLOAD_DESCRIPTION = """\
Have the server download each URL given, and each URL of every --input-file, into
DIR. Several URLs are started concurrently (--parallel) and their answers printed in
the order given; a refused URL is reported on stderr and does not stop the others.

exit status: 0 when every download started (with --wait: completed), 1 when any
failed, 2 for a usage error, 130 on Ctrl-C (which stops the watching, not the downloads)."""

DOWNLOAD_EXAMPLES = """\
examples:
  ferry download https://example.com/a.iso --to Downloads --wait
  ferry download https://example.com/1.csv https://example.com/2.csv --to data
  ferry download -i urls.txt -j 16 --to Downloads --wait
  list-mirror-urls | ferry download -i - --to Downloads"""


def add_client_commands(subparsers) -> None:
    """Registers the client commands on `ferry`'s subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server", help="the Ferry server's URL [env FERRY_URL; default: the saved login]"
    )
    common.add_argument("--token", help="auth token [env FERRY_TOKEN; default: the saved login]")

    login = subparsers.add_parser(
        "login",
        parents=[common],
        help="log in to a server and save the token",
        description="Log in and save the server, user id and token in "
        "$XDG_CONFIG_HOME/ferry/client.json (default ~/.config/ferry/client.json, mode 0600). "
        "The password is prompted for, or read from standard input when it is not a terminal.",
    )
    login.add_argument("--user", help="user name or email (default: the saved one)")
    login.set_defaults(run=cmd_login)

    download = subparsers.add_parser(
        "download",
        parents=[common],
        help="have the server download one or many URLs into a directory",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DOWNLOAD_DESCRIPTION,
        epilog=DOWNLOAD_EXAMPLES,
    )
    download.add_argument("urls", nargs="*", metavar="URL", help="http or https URL")
    download.add_argument(
        "-i",
        "--input-file",
        action="append",
        dest="input_files",
        metavar="FILE",
        help="read URLs from FILE, one a line; blank lines and lines starting with # are "
        "skipped; '-' reads standard input (may be repeated)",
    )
    download.add_argument(
        "--to", required=True, metavar="DIR", help="directory under the file root ('/' for the top)"
    )
    download.add_argument(
        "--filename", help="name for the file (default: from the server); one URL only"
    )
    download.add_argument("--timeout", type=int, metavar="S", help="seconds each download may take")
    download.add_argument(
        "-j",
        "--parallel",
        type=int,
        default=8,
        metavar="N",
        help="start requests in flight at once (default 8); how many transfer at once is "
        "the server's --max-concurrent-downloads",
    )
    download.add_argument(
        "--wait",
        action="store_true",
        help="show progress until every download ends, then a summary; fail if any fails",
    )
    download.set_defaults(run=cmd_download, usage_error=download.error)

    downloads = subparsers.add_parser(
        "downloads",
        parents=[common],
        help="active downloads with live progress bars (Ctrl-C to stop)",
    )
    downloads.add_argument("--once", action="store_true", help="print a table and exit")
    downloads.add_argument("--json", action="store_true", help="print the list as JSON and exit")
    downloads.set_defaults(run=cmd_downloads)

    history = subparsers.add_parser(
        "history", parents=[common], help="finished downloads, newest first"
    )
    history.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(run=cmd_history)

    cancel = subparsers.add_parser("cancel", parents=[common], help="cancel an active download")
    cancel.add_argument("id", help="the download id")
    cancel.set_defaults(run=cmd_cancel)

    imports = subparsers.add_parser(
        "import",
        parents=[common],
        help="import a chat export (file or URL), or `ferry import status`",
        description="Upload FILE (streamed) or have the server fetch URL, wait until it is "
        "prepared, show what it holds, import it and follow the progress. "
        "`ferry import status` shows the current operation.",
    )
    imports.add_argument("source", metavar="FILE_OR_URL", help="an export file, a URL, or `status`")
    imports.add_argument("--importer", help="csv, slack, slack-users or hipchatenterprise")
    imports.add_argument("--all", action="store_true", help="import every user and channel")
    imports.add_argument(
        "--select", action="store_true", help="choose users and channels at a numbered prompt"
    )
    imports.add_argument("--password", help="password of an encrypted HipChat export")
    imports.add_argument(
        "--server-path",
        action="store_true",
        help="FILE_OR_URL is a path inside the server's --import-folder",
    )
    imports.set_defaults(run=cmd_import)
