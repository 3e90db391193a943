"""downloadPendingFiles and downloadPendingAvatars: what an import left to fetch.

Each creates its own operation and leaves every other operation's data alone; every
fetch goes through the one download manager and its policy.
"""

from __future__ import annotations

import base64
import binascii
import shutil
import time
from pathlib import Path

from ferry.chat.attachments import Attachments
from ferry.chat.operations.importers import IMPORTERS
from ferry.chat.operations.records import OperationRecords
from ferry.chat.operations.workers import PENDING_AVATARS, PENDING_FILES, ImportWorkers
from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import DOWNLOAD_TIMEOUT, NETWORK_ERROR, FetchError
from ferry.downloads.records import Owner
from ferry.kernel.statuses import DownloadKind, DownloadStatus, ImportStep
from storage.users import UserRepository
from storage.workspace import WorkspaceStore

PENDING_ATTEMPTS = 3
# At most this many per-file failure reasons are kept on a pending-files operation.
PENDING_REASONS = 50
# A data: URI avatar larger than this is left pending.
MAX_INLINE_AVATAR = 5 * 1024 * 1024


class PendingDownloads:
    def __init__(
        self,
        operations: OperationRecords,
        workers: ImportWorkers,
        users: UserRepository,
        workspace: WorkspaceStore,
        downloads: DownloadManager,
        *,
        attachments: Attachments,
        avatars_dir: Path,
    ):
        self._operations = operations
        self._workers = workers
        self._users = users
        self._workspace = workspace
        self._downloads = downloads
        self._attachments = attachments
        self._avatars_dir = avatars_dir
        workers.handle(PENDING_FILES, self._files_job, side=True)
        workers.handle(PENDING_AVATARS, self._avatars_job, side=True)

    def waiting(self) -> dict[str, int]:
        """How much an import left to fetch: messages waiting for a file (`files`) and
        users waiting for an avatar (`avatars`)."""
        return {
            "files": self._workspace.pending_file_count(),
            "avatars": len(self._users.with_pending_avatars()),
        }

    # --- files -----------------------------------------------------------------------

    def download_pending_files(self, user_id: str) -> int:
        """downloadPendingFiles: counts messages still waiting for a file and fetches
        each distinct file once, in the background, through the download manager."""
        count = self._workspace.pending_file_count()
        operation = self._operations.create(user_id, IMPORTERS["pending-files"])
        if count == 0:
            self._operations.update(operation["_id"], status=ImportStep.DONE)
            return 0
        self._workers.queue(
            operation["_id"],
            PENDING_FILES,
            {"user_id": user_id},
            status=ImportStep.IMPORTING_FILES,
            count={"total": count, "completed": 0, "error": 0, "messages": count},
        )
        return count

    def _owner(self, user_id: str) -> Owner:
        """The user running the operation, whom its downloads are recorded as started by."""
        return Owner.of(self._users.get(user_id) or {"_id": user_id})

    def _job_total(self, op_id: str) -> int | None:
        """The operation's total, while its job is still to be done."""
        operation = self._operations.get(op_id)
        if operation is None or operation["status"] != ImportStep.IMPORTING_FILES:
            return None
        return (operation.get("count") or {}).get("total", 0)

    def _files_job(self, op_id: str, job_input: dict) -> None:
        total = self._job_total(op_id)
        if total is not None:
            self._fetch_pending_files(op_id, self._owner(job_input["user_id"]), total)

    def _fetch_pending_files(self, op_id: str, owner: Owner, total: int) -> None:
        # file id -> (what to fetch, how many messages point at it, their rooms)
        files: dict[str, tuple[dict, int, set[str]]] = {}
        for message in self._workspace.pending_file_messages():
            pending = message["_importFile"]
            _, count, rooms = files.get(pending["id"], (pending, 0, set()))
            files[pending["id"]] = (pending, count + 1, rooms | {message["rid"]})
        # A job taken over from a worker that stopped counts what that one fetched.
        completed = max(0, total - sum(messages for _, messages, _ in files.values()))
        errors = 0
        # Why each file failed, so that a refused or broken link is explained somewhere.
        reasons: list[str] = []
        for file_id, (pending, messages, rooms) in files.items():
            if not self._workers.keeps(op_id):
                self._workers.stopped(op_id)
                return
            upload_id, directory, display = self._attachments.new_upload()
            record, reason = self._fetch_with_retries(pending, directory, display, owner)
            if record is not None and record["status"] == DownloadStatus.COMPLETED:
                url, attachment = self._attachments.publish(
                    upload_id, record["filename"], rooms, record.get("total_bytes")
                )
                self._workspace.mark_files_downloaded([(file_id, url, attachment)])
                completed += messages
            else:
                self._attachments.discard(upload_id)
                errors += messages
                completed += messages
                if record is not None:
                    reason = f"{record.get('message')} [{record.get('error')}]"
                if len(reasons) < PENDING_REASONS:
                    reasons.append(f"file {file_id}: {reason}")
            self._operations.set_live_counts(op_id, {"completed": completed, "error": errors})
        if reasons:
            self._operations.update(op_id, warnings=reasons)
        self._operations.finish(op_id, ImportStep.DONE)

    def _fetch_with_retries(
        self, pending: dict, directory: Path, display: str, owner: Owner
    ) -> tuple[dict | None, str | None]:
        """The download's final record, or (None, why no download was started)."""
        url = pending.get("downloadUrl") or ""
        if pending.get("external") or not url.startswith("http"):
            return None, "not a downloadable http(s) link"
        for attempt in range(PENDING_ATTEMPTS):
            try:
                handle = self._downloads.start(
                    url,
                    directory,
                    display,
                    filename=pending.get("name"),
                    kind=DownloadKind.PENDING_FILE,
                    owner=owner,
                )
            except FetchError as refusal:
                return None, f"{refusal.message} [{refusal.code}]"
            record = handle.wait()
            if record is None:
                return None, "the download did not finish"
            if record["status"] == DownloadStatus.COMPLETED:
                return record, None
            if (
                record.get("error") not in (NETWORK_ERROR, DOWNLOAD_TIMEOUT)
                or self._workers.stopping
            ):
                return record, None
            time.sleep(min(2**attempt, 8))
        return record, None

    # --- avatars ---------------------------------------------------------------------

    def download_pending_avatars(self, user_id: str) -> int:
        """downloadPendingAvatars: http(s) avatars through the manager; data: URIs stored
        directly instead of staying pending forever."""
        pending = [u for u in self._users.with_pending_avatars()]
        operation = self._operations.create(user_id, IMPORTERS["pending-avatars"])
        if not pending:
            self._operations.update(operation["_id"], status=ImportStep.DONE)
            return 0
        self._workers.queue(
            operation["_id"],
            PENDING_AVATARS,
            {"user_id": user_id},
            status=ImportStep.IMPORTING_FILES,
            count={"total": len(pending), "completed": 0, "error": 0},
        )
        return len(pending)

    def _avatars_job(self, op_id: str, job_input: dict) -> None:
        total = self._job_total(op_id)
        if total is not None:
            self._fetch_avatars(op_id, self._owner(job_input["user_id"]), total)

    def _fetch_avatars(self, op_id: str, owner: Owner, total: int) -> None:
        pending = self._users.with_pending_avatars()
        errors = 0
        avatars = self._avatars_dir
        avatars.mkdir(parents=True, exist_ok=True)
        done_before = max(0, total - len(pending))
        for completed, user in enumerate(pending, start=done_before + 1):
            if not self._workers.keeps(op_id):
                self._workers.stopped(op_id)
                return
            url = user["_pendingAvatarUrl"]
            stored = self._store_avatar(user["_id"], url, avatars, owner)
            if stored:
                self._users.update(
                    user["_id"],
                    {"avatarOrigin": "url", "avatarETag": stored, "_pendingAvatarUrl": None},
                )
            else:
                errors += 1
            self._operations.set_live_counts(op_id, {"completed": completed, "error": errors})
        self._operations.finish(op_id, ImportStep.DONE)

    def _store_avatar(self, user_id: str, url: str, avatars: Path, owner: Owner) -> str | None:
        if url.startswith("data:"):
            header, _, payload = url.partition(",")
            try:
                data = (
                    base64.b64decode(payload, validate=True)
                    if ";base64" in header
                    else payload.encode()
                )
            except (binascii.Error, ValueError):
                return None
            if len(data) > MAX_INLINE_AVATAR:
                return None
            (avatars / user_id).write_bytes(data)
            return user_id
        directory = avatars / f".{user_id}.incoming"
        directory.mkdir(exist_ok=True)
        try:
            record = self._downloads.start(
                url,
                directory,
                "avatars",
                filename=user_id,
                kind=DownloadKind.PENDING_AVATAR,
                owner=owner,
            ).wait()
        except FetchError:
            return None
        if record is None or record["status"] != DownloadStatus.COMPLETED:
            shutil.rmtree(directory, ignore_errors=True)
            return None
        (directory / record["filename"]).replace(avatars / user_id)
        shutil.rmtree(directory, ignore_errors=True)
        return user_id
