"""What the client shows: the consoles, tables, times, sizes and durations, the progress
columns fed by the server's own figures, a download's outcome line, and the exit statuses.

Rich draws live bars and tables on a terminal; a pipe or a file gets plain lines instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from ferry.kernel.statuses import DownloadStatus

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
# How often a live display asks the server for fresh figures.
POLL_SECONDS = 0.5
LOGIN_HINT = "ferry: log in with `ferry login`, or pass --token / FERRY_TOKEN"

# soft_wrap: lines are never broken mid-message when the output is a file or a pipe.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


# --- times, sizes and tables -------------------------------------------------------------


def timestamp_text(stamp: float | int | None) -> str:
    if not stamp:
        return ""
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def duration_text(seconds: float | int | None) -> str:
    if seconds is None:
        return "-:--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def bytes_text(count: float | int | None) -> str:
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
        return Text(f"ETA {duration_text(task.fields['eta'])}", style="progress.remaining")


class DownloadProgress(Progress):
    """Progress rows with an optional line of text below them."""

    footer = ""

    def get_renderables(self):
        yield from super().get_renderables()
        if self.footer:
            yield Text(self.footer, style="progress.remaining")


def _amount_columns() -> tuple[ProgressColumn, ...]:
    """The bar, the percentage and the bytes, as every transfer row shows them."""
    return (BarColumn(bar_width=30), TaskProgressColumn(), DownloadColumn())


def download_progress(console: Console) -> DownloadProgress:
    return DownloadProgress(
        TextColumn("[bold]{task.description}", table_column=None),
        *_amount_columns(),
        ServerSpeedColumn(),
        ServerEtaColumn(),
        console=console,
        refresh_per_second=8,
        disable=not console.is_terminal,
    )


def transfer_progress(console: Console) -> Progress:
    """One bar for bytes this client sends or receives itself (speed and time left
    measured here); drawn only when `console` is a terminal, and gone when done."""
    return Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        *_amount_columns(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


# --- a download's figures and outcome ---------------------------------------------------


def download_fields(entry: dict) -> dict:
    return {
        "completed": entry.get("current_size") or 0,
        "total": entry.get("expected_size"),
        "speed": entry.get("speed") or 0,
        "eta": entry.get("eta"),
    }


def outcome_line(entry: dict) -> tuple[bool, str]:
    """(completed?, a line): `completed PATH (SIZE in T)` or `CODE: message (PATH STATUS)`."""
    status = entry.get("status")
    where = entry.get("file_path") or entry.get("filename") or entry.get("id")
    if status == DownloadStatus.COMPLETED:
        took = (entry.get("end_time") or 0) - (entry.get("start_time") or 0)
        size = entry.get("total_bytes") or entry.get("current_size")
        return True, f"completed {where} ({bytes_text(size)} in {duration_text(max(took, 0))})"
    code = entry.get("error") or str(status).upper()
    message = entry.get("message")
    return False, f"{code}" + (f": {message}" if message else "") + f" ({where} {status})"
