"""`ferry import FILE_OR_URL` and `ferry import status`: upload a chat export or have the
server fetch it, show what it holds, choose what to import, and follow the import."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
)

from ferry.client.api import ClientError, FerryClient, client_for
from ferry.client.live import EventStream, operation_updates
from ferry.client.render import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    POLL_SECONDS,
    bytes_text,
    err,
    out,
    print_table,
    transfer_progress,
)
from ferry.kernel.statuses import FINAL_IMPORT_STEPS, DownloadKind, ImportState, ImportStep

# How many users or channels of an export are listed before the rest are only counted.
SHOWN_ROWS = 15


def _step_label(step: str | None) -> str:
    return (step or "").removeprefix("importer_").replace("_", " ")


def cmd_import(args: argparse.Namespace) -> int:
    if args.source == "status" and not args.importer:
        return _import_status(client_for(args.server, args.token))
    if not args.importer:
        raise ClientError("name the importer with --importer (csv, slack, ...)")
    if args.all and args.select:
        raise ClientError("give --all or --select, not both")
    client = client_for(args.server, args.token)
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
    with transfer_progress(out) as progress:
        task = progress.add_task(f"uploading {path.name}", total=size)
        client.upload_import(
            path, importer, password, lambda sent: progress.update(task, completed=sent)
        )
    out.print(f"Uploaded {path.name} ({bytes_text(size)})")


def _wait_until_prepared(client: FerryClient) -> dict:
    """Follows the operation until the file is parsed; shows the step and any download."""
    with (
        EventStream(client) as stream,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.fields[detail]}", style="progress.download"),
            console=out,
            transient=True,
            disable=not out.is_terminal,
        ) as progress,
    ):
        task = progress.add_task("waiting for the server", detail="")
        status = client.import_status()
        operation = status.get("operation") or {}
        operation_id = operation.get("_id")
        state, step, error = status["state"], operation.get("status"), operation.get("error")
        detail = ""
        events = iter(stream)
        while True:
            if state in (ImportState.ERROR, ImportState.CANCELED, ImportState.NONE):
                reason = error or f"the operation ended as {state}"
                raise ClientError(f"preparing the import failed: {reason}")
            if state not in (ImportState.NEW, ImportState.LOADING):
                break
            progress.update(task, description=_step_label(step), detail=detail)
            _, data = next(events)
            if "operation" in data:
                changed = data["operation"]
                if changed["id"] != operation_id:
                    raise ClientError("another import replaced this one on the server")
                state, step, error = changed["state"], changed["step"], changed.get("error")
            elif (data.get("download") or {}).get("kind") == DownloadKind.IMPORT:
                fetching = data["download"]
                done, total = fetching.get("current_size"), fetching.get("expected_size")
                detail = bytes_text(done) + (f" / {bytes_text(total)}" if total else "")
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
    with (
        EventStream(client) as stream,
        Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=30),
            TaskProgressColumn(),
            TextColumn("{task.fields[counts]} [red]{task.fields[errors]}"),
            console=out,
            disable=not out.is_terminal,
        ) as progress,
    ):
        task = progress.add_task("import starting", total=None, errors="", counts="")
        operation_id = (client.import_status().get("operation") or {}).get("_id")
        current = client.import_progress()
        updates = (op for op in operation_updates(stream) if op["id"] == operation_id)
        while True:
            count = current.get("count") or {}
            progress.update(
                task,
                description=_step_label(current.get("step")),
                completed=count.get("completed", 0),
                total=count.get("total") or None,
                errors=f"{count['error']} errors" if count.get("error") else "",
                counts=f"{count.get('completed', 0)}/{count.get('total', 0)}",
            )
            if current.get("step") in FINAL_IMPORT_STEPS:
                break
            current = next(updates)
    operation = client.import_status().get("operation") or {}
    if current["step"] != ImportStep.DONE:
        reason = operation.get("error") or _step_label(current["step"])
        err.print(f"ferry: error {_step_label(current['step'])}: {reason}")
        return EXIT_FAILED
    out.print("Import done. " + _report_line(operation.get("report") or {}))
    for sample in (operation.get("report") or {}).get("error_samples", [])[:5]:
        err.print(f"  problem: {sample}")
    return 0


def _report_line(report: dict) -> str:
    parts = [
        f"users: {report.get('users_created', 0)} created, {report.get('users_matched', 0)} "
        f"matched existing accounts, {report.get('users_skipped', 0)} skipped",
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
