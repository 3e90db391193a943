"""What a user does to a download once it runs: cancel it, pause it, go on with it;
and the job that goes on with a download recorded earlier. A part of the
`DownloadManager`, apart so that each file stays readable."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from ferry.downloads.checksums import Checksum
from ferry.downloads.fetch_types import PartialFile
from ferry.downloads.jobs import DownloadHandle, Job
from ferry.downloads.pausing import PAUSING, paused_record, resumed_record
from ferry.downloads.policy import DOWNLOAD_CANCELLED, SERVER_STOPPED, FetchError
from ferry.downloads.records import in_final_state, public_view
from ferry.downloads.recovery import partial_file, remove_leftovers
from ferry.kernel.statuses import DownloadKind, DownloadStatus
from storage.downloads import LOCAL_KEY

# How long a cancel or a pause waits for the transfer to stop before answering.
STOP_WAIT_SECONDS = 10.0


class DownloadControl:
    """Cancel, pause and resume, over the manager's jobs (`_jobs`) and lock, for a
    download running here, on another worker, queued, or paused; `DownloadManager`
    provides the rest."""

    _jobs: dict[str, Job]
    _queued: dict[str, Job]
    _paused_ids: set[str]
    _lock: threading.RLock
    _stopping: bool
    _works_jobs: bool

    def cancel(self, record_id: str) -> bool:
        """Stop a queued, running or paused download and return once it has stopped;
        False if it is unknown or already finished."""
        with self._lock:
            job = self._jobs.get(record_id)
            if job is not None and job.finished:
                return False
            if job is not None:
                self._stop(job, DOWNLOAD_CANCELLED)
        if job is not None:
            job.handle.wait_until_done(STOP_WAIT_SECONDS)
            return True
        record = self._repository.get(record_id)
        if record is not None and record.get("status") == DownloadStatus.PAUSED:
            self._cancel_paused(record)
            return True
        return self._stop_anywhere(record_id, DOWNLOAD_CANCELLED) is not None

    def _cancel_paused(self, record: dict) -> None:
        with self._lock:
            self._paused_ids.discard(record["id"])
        remove_leftovers(record.get(LOCAL_KEY) or {})
        record = in_final_state(
            record,
            DownloadStatus.CANCELLED,
            error=DOWNLOAD_CANCELLED,
            message="the download was cancelled",
            total_bytes=None,
        )
        self._repository.save(record)
        self._repository.prune_history(self._history_limit)
        self._tell("download_finished", public_view(record))

    def pause(self, record_id: str) -> dict | None:
        """Stop a queued or running file download, keeping its part file when the
        remote lets it go on from there; returns the paused record once the transfer has
        stopped. None if it is unknown, finished or paused already.

        Raises ValueError for a download that is part of an import.
        """
        with self._lock:
            job = self._jobs.get(record_id)
            if job is not None:
                if job.finished or job.stop_code is not None:
                    return None
                _only_files(job.record)
                self._stop(job, PAUSING)
        if job is not None:
            job.handle.wait_until_done(STOP_WAIT_SECONDS)
            return self.get(record_id)
        record = self._repository.get(record_id)
        if record is None:
            return None
        _only_files(record)
        if self._stop_anywhere(record_id, PAUSING) is None:
            return None
        return self.get(record_id)

    def resume(self, record_id: str) -> tuple[dict, bool] | None:
        """Queue a paused download again: from its part file when one was kept (asking
        the remote for the rest by range, `If-Range` its validator), else from the start.
        Returns the record and whether it starts over; None if it is not paused.

        Raises FetchError(SERVER_STOPPED) once shutdown has begun.
        """
        with self._lock:
            if self._stopping:
                raise FetchError(SERVER_STOPPED, "the server is shutting down")
        record = self._repository.get(record_id)
        if record is None or record.get("status") != DownloadStatus.PAUSED:
            return None
        partial = partial_file(record)
        job = self._job_for(resumed_record(record), partial)
        with self._lock:
            self._paused_ids.discard(record_id)
            if self._works_jobs:
                self._queued[record_id] = job
        self._repository.save(job.record)
        self._tell("download_resumed", job.live())
        self._fill_slots()
        return job.live(), partial is None

    def _job_for(self, record: dict, partial: PartialFile | None) -> Job:
        """The job that goes on with a download recorded earlier (after a crash, a
        planned stop or a pause), from `partial` when there is one."""
        local = record[LOCAL_KEY]
        policy = self._policy
        if local.get("timeout") is not None:
            policy = dataclasses.replace(policy, timeout=float(local["timeout"]))
        try:
            checksum = Checksum.parse(record["checksum"]) if record.get("checksum") else None
        except ValueError:
            checksum = None
        return Job(
            record,
            Path(local["directory"]),
            policy,
            local.get("requested_name"),
            DownloadHandle(record["id"], self.get),
            None,
            tuning=self._tuning,
            partial=partial,
            checksum=checksum,
        )

    def _still_paused(self, record: dict) -> dict:
        """A paused record found at start-up, without its part file if that was lost."""
        if partial_file(record) is not None:
            return record
        remove_leftovers(record.get(LOCAL_KEY) or {})
        return paused_record(record, 0, None)


def _only_files(record: dict) -> None:
    if record.get("kind", DownloadKind.FILE) != DownloadKind.FILE:
        raise ValueError("only file downloads can be paused; this one is part of an import")
