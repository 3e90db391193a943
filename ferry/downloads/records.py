"""A download's record: who started it, naming its file, closing it in a final state,
the view of it clients get (without the local bookkeeping), and the view anyone but its
owner gets (without the secrets in its URL)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ferry.kernel.logs import redact_text, redact_url
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


@dataclass(frozen=True)
class Owner:
    """Who started a download: a user's id, and their username at the time (for display)."""

    user_id: str
    username: str | None = None

    @classmethod
    def of(cls, user: dict) -> Owner:
        return cls(user["_id"], user.get("username"))


def owner_fields(owner: Owner | None) -> dict:
    """The record fields naming `owner`; None for both when nobody owns the download."""
    if owner is None:
        return {"owner_id": None, "owner_username": None}
    return {"owner_id": owner.user_id, "owner_username": owner.username}


def public_view(record: dict) -> dict:
    """A record as clients see it, without the local bookkeeping."""
    view = {k: v for k, v in record.items() if k != LOCAL_KEY}
    # Records written before downloads had owners lack the fields: owned by nobody.
    return view if "owner_id" in view else {**view, **owner_fields(None)}


def owned_by(record: dict, user_id: str) -> bool:
    return record.get("owner_id") is not None and record.get("owner_id") == user_id


def without_secrets(record: dict) -> dict:
    """A public record as anyone but its owner sees it: the URL, and the message (which
    may quote it), redacted as the logs redact them."""
    shown = {**record, "url": redact_url(record["url"])}
    if shown.get("message"):
        shown["message"] = redact_text(shown["message"])
    return shown
