"""A download's record: naming its file, closing it in a final state, and the view of it
clients get (without the local bookkeeping)."""

from __future__ import annotations

import math
import time

from ferry.kernel.statuses import DownloadStatus
from storage.downloads import LOCAL_KEY

COMPLETED_MESSAGE = "Download completed"
STOPPED_MESSAGE = "the server stopped before the download finished"


def now() -> int:
    return int(time.time())


def part_tag(record_id: str) -> str:
    return record_id.replace("-", "")[:16]


def percentage(current: int, expected: int | None) -> float | None:
    if expected is None:
        return None
    if expected <= 0:
        return 100.0
    # Rounded down, so 100.0 is shown only once every byte is there.
    return min(100.0, math.floor(current * 1000 / expected) / 10)


def named(record: dict, filename: str) -> dict:
    """`record` with its file name and the display path that goes with it."""
    display = record["directory"].rstrip("/")
    file_path = f"{display}/{filename}" if display else filename
    return {**record, "filename": filename, "file_path": file_path}


def in_final_state(
    record: dict,
    status: DownloadStatus,
    *,
    error: str | None,
    message: str,
    total_bytes: int | None,
) -> dict:
    """`record` in a final state. `finished_ns` orders downloads ending in the same second."""
    return {
        **record,
        "status": status,
        "total_bytes": total_bytes,
        "end_time": max(now(), record.get("start_time") or 0),
        "error": error,
        "message": message,
        LOCAL_KEY: {**(record.get(LOCAL_KEY) or {}), "finished_ns": time.time_ns()},
    }


def public_view(record: dict) -> dict:
    """A record as clients see it, without the local bookkeeping."""
    return {k: v for k, v in record.items() if k != LOCAL_KEY}
