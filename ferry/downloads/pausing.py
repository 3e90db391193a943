"""Pausing a download and going on with it: the records of a paused download and of
one going on, and which stops keep the part file."""

from __future__ import annotations

from ferry.downloads.fetch_types import PartialFile
from ferry.downloads.jobs import Job
from ferry.downloads.policy import DOWNLOAD_CANCELLED, SERVER_STOPPED, FetchError
from ferry.downloads.records import percentage
from ferry.kernel.statuses import DownloadKind, DownloadStatus
from storage.downloads import LOCAL_KEY

# The stop code of a download being paused (never recorded as an error).
PAUSING = "PAUSING"
# The stop code of a download another worker took over (its lease ran out here): this
# process lets go without writing anything, and leaves the part file to the new holder.
HANDED_OVER = "HANDED_OVER"


def held_by_stop(job: Job, error: FetchError) -> bool:
    """Whether `job`'s transfer, ended by `error`, goes on later from its part file: it is
    being paused, or stopped with the server, or it failed in a way worth another try and
    has tries left. File downloads only: an import's download is part of an operation
    that ends with the server, and its retries start over. A part file another worker
    took over is never this process's to delete."""
    if job.stop_code == HANDED_OVER:
        return True
    if job.record.get("kind", DownloadKind.FILE) != DownloadKind.FILE:
        return False
    if error.code == DOWNLOAD_CANCELLED:
        return job.stop_code in (PAUSING, SERVER_STOPPED)
    return error.transient and job.attempts <= job.tuning.retries


def paused_record(record: dict, current: int, partial: PartialFile | None) -> dict:
    """`record` paused with `current` bytes in its part file, or with none when the part
    file could not be kept (the remote offered no way to resume): it then starts over."""
    kept = current if partial is not None else 0
    local = dict(record[LOCAL_KEY])
    if partial is None:
        local.update(part_path=None, resume=None)
    return {
        **record,
        "status": DownloadStatus.PAUSED,
        "current_size": kept,
        "progress_percentage": percentage(kept, record.get("expected_size")),
        LOCAL_KEY: local,
    }


def resumed_record(record: dict) -> dict:
    """A paused `record` queued again."""
    return {**record, "status": DownloadStatus.STARTING}
