"""The import API's lifecycle: operations, their steps, and the work behind them.

Wire-compatible with Rocket.Chat (step strings, error types, bodies), better inside:
files are prepared in the background (getImportFileData never parses), an import
starts only from `importer_user_selection`, `import.clear` really stops a running
import, a restart never leaves an operation stuck, every fetch goes through the one
download manager and its policy, and pending-file downloads never wipe another
operation's staging data.

`ImportService` owns the operations of file imports; it builds `pending`
(downloadPendingFiles, downloadPendingAvatars) and `api` (the `import.*` endpoints),
which share its operation records and workers.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ferry.chat.attachments import Attachments
from ferry.chat.convert.run import run_import
from ferry.chat.convert.state import ImportCancelled, Selection
from ferry.chat.operations.api_import import ApiImporter
from ferry.chat.operations.files import (
    NOT_BASE64,
    copy_capped,
    decode_base64_capped,
    fetch_failure,
    local_import_path,
    stored_file_name,
)
from ferry.chat.operations.importers import (
    IMPORTER_NOT_DEFINED,
    INVALID_OPERATION_STATUS,
    ImporterInfo,
    importer_info,
    visible_importers,
)
from ferry.chat.operations.lifecycle import (
    DISK_FULL_REASON,
    IMPORTING,
    PREPARING,
    RESTART_REASON,
    WAITING,
    disk_full,
)
from ferry.chat.operations.pending import PendingDownloads
from ferry.chat.operations.records import OperationRecords
from ferry.chat.operations.step_sink import StepSink
from ferry.chat.operations.workers import IMPORT, PREPARE, ImportWorkers
from ferry.chat.parsers import REGISTRY
from ferry.chat.parsers.base import ImportFileError, PrepareOptions
from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import DOWNLOAD_TIMEOUT, FetchError
from ferry.downloads.records import Owner
from ferry.kernel.errors import InvalidInput, MeteorError
from ferry.kernel.statuses import DownloadKind, DownloadStatus, ImportStep
from storage.contacts import ContactRepository
from storage.operations import OperationRepository
from storage.staging import StagingArea, StagingIncomplete
from storage.users import UserRepository
from storage.workspace import WorkspaceStore

RECENT_OPERATIONS = 20
PROGRESS_WRITE_INTERVAL = 1.0
HEADERS_WAIT_SECONDS = 60
# At most this many of a prepare's warnings are shown on its operation.
SHOWN_WARNINGS = 50
# Base64 uploads are decoded into a file so named before their operation exists.
DECODING_PREFIX = ".decoding-"


class ImportService:
    def __init__(
        self,
        operations: OperationRepository,
        staging: StagingArea,
        users: UserRepository,
        workspace: WorkspaceStore,
        downloads: DownloadManager,
        *,
        store_dir: Path,
        attachments: Attachments,
        avatars_dir: Path,
        import_folder: Path | None,
        max_upload_size: int,
        hash_password: Callable[[str], str],
        contacts: ContactRepository,
        direct_message_max_users: int = 1,
        on_status: Callable[[dict], None] | None = None,
        on_work_done: Callable[[], None] | None = None,
        works_jobs: bool = True,
    ):
        """Builds the service; `startup` starts its workers.

        `on_status` hears every stored status; `on_work_done` is called after each
        prepare or import, which allocate tens of MB of short-lived records. Without
        `works_jobs` the work queued here is done by other processes on the same
        database.
        """
        self.operations = OperationRecords(operations, on_status)
        self.staging = staging
        self.users = users
        self.workspace = workspace
        self.contacts = contacts
        self.downloads = downloads
        self.store_dir = store_dir
        self.import_folder = import_folder
        self.max_upload_size = max_upload_size
        self.direct_message_max_users = direct_message_max_users
        self.store_dir.mkdir(parents=True, exist_ok=True)
        # One identity per process: its import work and its downloads share the id.
        self.workers = ImportWorkers(
            self.operations,
            operations,
            staging,
            on_work_done,
            works_jobs=works_jobs,
            worker_id=downloads.worker_id,
        )
        self.operations.listen(self.workers.status_stored)
        self.workers.handle(PREPARE, self._prepare_job)
        self.workers.handle(IMPORT, self._import_job)
        self.workers.on_abandoned(self._abandoned)
        # Two startImport calls at once must not both find the operation ready.
        self._lock = threading.RLock()
        self.pending = PendingDownloads(
            self.operations,
            self.workers,
            users,
            workspace,
            downloads,
            attachments=attachments,
            avatars_dir=avatars_dir,
        )
        self.api = ApiImporter(
            self.operations,
            staging,
            clear=self.clear,
            begin_import=self.begin_import,
            hash_password=hash_password,
        )

    # --- operations --------------------------------------------------------------

    def _new_operation(self, user_id: str, info: ImporterInfo) -> dict:
        """A new current operation, held by this process while its file arrives."""
        self.clear()
        operation = self.operations.create(user_id, info)
        self.workers.hold(operation["_id"])
        return operation

    def current_operation(self) -> dict | None:
        return self.operations.current()

    def latest_operations(self) -> list[dict]:
        return self.operations.recent(RECENT_OPERATIONS)

    def visible_importers(self) -> list[dict]:
        return visible_importers()

    # --- getting the file ----------------------------------------------------------

    def upload(
        self,
        user_id: str,
        file_name: str,
        content_type: str,
        importer_key: str,
        content: str | IO[bytes],
        *,
        base64_stream: bool = False,
        password: str | None = None,
    ) -> dict:
        """uploadImportFile: base64 text (Rocket.Chat's JSON body, as a string or, with
        `base64_stream`, as a stream of its characters) or a binary stream.

        Base64 is decoded and checked before a new operation replaces the current one,
        so a refused upload leaves the current operation alone. `password` decrypts an
        encrypted export; it is kept in memory only, never stored.

        Raises:
            MeteorError: unknown importer, the file is larger than the upload cap, or
                the disk is full.
            InvalidInput: binaryContent is not base64.
        """
        info = importer_info(importer_key, "uploadImportFile")
        if not info.takes_files:
            raise MeteorError(
                IMPORTER_NOT_DEFINED,
                f"The importer ({importer_key}) takes no file.",
                "uploadImportFile",
            )
        decoded = None
        if isinstance(content, str) or base64_stream:
            decoded = self._decode_upload(content)
        operation = self._new_operation(user_id, info)
        stored = stored_file_name(user_id, file_name)
        target_dir = self.store_dir / operation["_id"]
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / stored
        self.operations.update(
            operation["_id"], status=ImportStep.UPLOADING, file=stored, contentType=content_type
        )
        try:
            if decoded is not None:
                os.replace(decoded, target)
            else:
                copy_capped(content, target, self.max_upload_size)
        except BaseException as failure:
            target.unlink(missing_ok=True)
            if decoded is not None:
                decoded.unlink(missing_ok=True)
            full = disk_full(failure)
            reason = DISK_FULL_REASON if full else "The upload did not complete."
            self.operations.update(operation["_id"], status=ImportStep.FAILED, error=reason)
            if full:
                raise MeteorError("error-disk-full", DISK_FULL_REASON, "uploadImportFile") from None
            raise
        self._file_loaded(operation["_id"], target, password)
        return self.operations.get(operation["_id"])

    def _decode_upload(self, content: str | IO[bytes]) -> Path:
        """Base64 text decoded into a hidden file of the import store, checked whole."""
        if isinstance(content, str):
            try:
                content = io.BytesIO(content.encode("ascii"))
            except UnicodeEncodeError:
                raise InvalidInput(NOT_BASE64) from None
        descriptor, name = tempfile.mkstemp(dir=self.store_dir, prefix=DECODING_PREFIX)
        decoded = Path(name)
        try:
            with os.fdopen(descriptor, "wb") as out:
                decode_base64_capped(content, out, self.max_upload_size)
        except BaseException as failure:
            decoded.unlink(missing_ok=True)
            if disk_full(failure):
                raise MeteorError("error-disk-full", DISK_FULL_REASON, "uploadImportFile") from None
            raise
        return decoded

    def download_public(
        self, user_id: str, file_url: str, importer_key: str, *, password: str | None = None
    ) -> dict:
        """downloadPublicImportFile: an http(s) URL through the download manager, or a
        path inside the admin's import folder.

        Raises:
            MeteorError: unknown importer, or a missing / disallowed local path.
            PlainRocketChatError: the fetch was refused or failed before its body.
        """
        info = importer_info(importer_key, "downloadImportFile")
        if not file_url.startswith("http"):
            local = local_import_path(self.import_folder, file_url)
            operation = self._new_operation(user_id, info)
            if local.is_dir():
                self.operations.update(operation["_id"], file=str(local))
                self._file_loaded(operation["_id"], local, password)
            else:
                target_dir = self.store_dir / operation["_id"]
                target_dir.mkdir(parents=True, exist_ok=True)
                target = target_dir / stored_file_name(user_id, local.name)
                self.operations.update(
                    operation["_id"], status=ImportStep.UPLOADING, file=target.name
                )
                shutil.copyfile(local, target)
                self._file_loaded(operation["_id"], target, password)
            return self.operations.get(operation["_id"])
        # As in Rocket.Chat the operation exists before the URL is checked, so that a
        # refused or failing URL shows as a failed import in getImportProgress.
        operation = self._new_operation(user_id, info)
        op_id = operation["_id"]
        try:
            checked_url = self.downloads.policy.check_url(file_url)
        except FetchError as refusal:
            self.operations.update(op_id, status=ImportStep.FAILED, error=refusal.message)
            raise fetch_failure(refusal) from None
        target_dir = self.store_dir / op_id
        target_dir.mkdir(parents=True, exist_ok=True)
        self.operations.update(op_id, status=ImportStep.DOWNLOADING_FILE)

        def finished(record: dict) -> None:
            if record["status"] == DownloadStatus.COMPLETED:
                path = target_dir / record["filename"]
                self.operations.update(op_id, file=path.name)
                self._file_loaded(op_id, path, password)
            else:
                self.operations.update(
                    op_id,
                    status=ImportStep.FAILED,
                    error=record.get("message") or record.get("error"),
                )

        try:
            handle = self.downloads.start(
                checked_url,
                target_dir,
                f"imports/{op_id}",
                kind=DownloadKind.IMPORT,
                on_finished=finished,
                owner=Owner.of(self.users.get(user_id) or {"_id": user_id}),
            )
            handle.wait_for_headers(HEADERS_WAIT_SECONDS)
        except (FetchError, TimeoutError) as failure:
            refusal = (
                failure
                if isinstance(failure, FetchError)
                else FetchError(DOWNLOAD_TIMEOUT, "no answer")
            )
            self.operations.update(op_id, status=ImportStep.FAILED, error=refusal.message)
            raise fetch_failure(refusal) from None
        return self.operations.get(op_id)

    # --- preparing -------------------------------------------------------------------

    def _file_loaded(self, op_id: str, path: Path, password: str | None = None) -> None:
        if password is not None:
            # The password is never stored, so no other process could prepare this one.
            self.operations.update(op_id, status=ImportStep.FILE_LOADED)
            self.workers.run_here(op_id, self._prepare, op_id, path, password)
            return
        # Kept relative where it can be: the data directory may sit elsewhere on the
        # host of the worker that claims the prepare.
        file = path.relative_to(self.store_dir) if path.is_relative_to(self.store_dir) else path
        self.workers.queue(op_id, PREPARE, {"file": str(file)}, status=ImportStep.FILE_LOADED)

    def _prepare_job(self, op_id: str, job_input: dict) -> None:
        operation = self.operations.get(op_id)
        # A prepare taken over from a worker that died may have started, or even ended.
        if operation is None or operation["status"] not in (ImportStep.FILE_LOADED, *PREPARING):
            return
        self._prepare(op_id, self.store_dir / job_input["file"], None)

    def _still_valid(self, op_id: str) -> bool:
        operation = self.operations.get(op_id)
        return bool(operation and operation.get("valid", True)) and self.workers.keeps(op_id)

    def _prepare(self, op_id: str, path: Path, password: str | None) -> None:
        operation = self.operations.get(op_id)
        if operation is None or not self._valid(op_id):
            return
        if not self.workers.keeps(op_id):
            self.workers.stopped(op_id, can_hand_back=password is None)
            return
        parser = REGISTRY[operation["importerKey"]]
        self.operations.update(op_id, status=ImportStep.PREPARING_STARTED)
        writer = self.staging.writer(op_id)
        sink = StepSink(
            writer,
            lambda step: self.operations.update(op_id, status=step),
            lambda: self._still_valid(op_id),
        )
        options = PrepareOptions(
            existing_user=lambda username: self._existing_import_id(username),
            password=password,
            direct_message_max_users=self.direct_message_max_users,
        )
        try:
            parser.prepare(path, sink, options)
        except ImportFileError as failure:
            writer.abort()
            self.operations.update(op_id, status=ImportStep.FAILED, error=failure.message)
            return
        except ImportCancelled:
            writer.abort()
            if self._valid(op_id):
                self.workers.stopped(op_id, can_hand_back=password is None)
            return
        except BaseException:
            writer.abort()
            raise
        counts = writer.finish()
        if not self._valid(op_id):
            return
        total = counts["users"] + counts["channels"] + counts["messages"] + counts["contacts"]
        if total == 0:
            self.operations.update(
                op_id, status=ImportStep.FAILED, error="No valid record found in the import file."
            )
            return
        self.operations.update(
            op_id,
            status=ImportStep.USER_SELECTION,
            count={
                "total": total,
                "completed": 0,
                "error": 0,
                "users": counts["users"],
                "channels": counts["channels"],
                "messages": counts["messages"],
                "contacts": counts["contacts"],
            },
            warnings=self.staging.warnings(op_id, limit=SHOWN_WARNINGS),
        )

    def _existing_import_id(self, username: str) -> str | None:
        """The import id that attaches a CSV author missing from users.csv to the server's
        user of that username, as Rocket.Chat does: one of theirs, or the username, which
        the account then gains (an account never gains an id another one holds)."""
        user = self.users.by_username(username)
        if user is None:
            return None
        if user.get("importIds"):
            return user["importIds"][0]
        holder = self.users.id_for_import_id(username)
        if holder is None:
            self.users.update(user["_id"], {"importIds": [username]})
        elif holder != user["_id"]:
            return None
        return username

    def file_data(self) -> dict:
        """getImportFileData: {waiting: true} while busy, else the selection."""
        operation = self.operations.require_latest("getImportFileData")
        info = importer_info(operation["importerKey"], "getImportFileData")
        if operation["status"] in WAITING:
            if not operation.get("valid", True):
                raise MeteorError(
                    "error-import-operation-invalid",
                    "Invalid Import Operation",
                    "getImportFileData",
                )
            return {"waiting": True}
        try:
            selection = self.staging.selection(operation["_id"])
        except StagingIncomplete:
            selection = {"users": [], "channels": [], "message_count": 0}
        return {"name": info.name, **selection}

    def progress(self) -> dict:
        operation = self.operations.with_live_counts(
            self.operations.require_latest("getImportProgress")
        )
        info = importer_info(operation["importerKey"], "getImportProgress")
        count = operation.get("count") or {}
        return {
            "key": info.key,
            "name": info.name,
            "step": operation["status"],
            "count": {k: count.get(k, 0) for k in ("completed", "total", "error")},
        }

    # --- importing --------------------------------------------------------------------

    def start_import(self, user_id: str, selection_input: dict) -> None:
        """startImport: only from importer_user_selection, once.

        Raises:
            MeteorError: no operation, unknown importer, or not ready to import.
        """
        operation = self.operations.require_latest("startImport")
        importer_info(operation["importerKey"], "startImport")
        self.begin_import(user_id, operation, Selection.from_input(selection_input), "startImport")

    def begin_import(
        self, user_id: str, operation: dict, selection: Selection, details: str
    ) -> None:
        """Import the prepared operation in the background; `details` names the method asking.

        Raises:
            MeteorError: the operation is not waiting for its user selection.
        """
        with self._lock:
            operation = self.operations.get(operation["_id"])
            if operation["status"] != ImportStep.USER_SELECTION or not operation.get("valid", True):
                raise MeteorError(
                    INVALID_OPERATION_STATUS,
                    f"The import operation is {operation['status']}, not ready to import",
                    details,
                )
            self.workers.queue(
                operation["_id"],
                IMPORT,
                {"selection": selection.as_record(), "user_id": user_id},
                status=ImportStep.IMPORTING_STARTED,
            )

    def _import_job(self, op_id: str, job_input: dict) -> None:
        operation = self.operations.get(op_id)
        # Taken over from a worker that died: it goes on, creating nothing twice.
        if operation is None or operation["status"] not in IMPORTING:
            return
        self._import(op_id, Selection.from_record(job_input["selection"]), job_input["user_id"])

    def _valid(self, op_id: str) -> bool:
        operation = self.operations.get(op_id)
        return bool(operation and operation.get("valid", True))

    def _import(self, op_id: str, selection: Selection, user_id: str) -> None:
        last_write = [0.0]
        last_step = [ImportStep.IMPORTING_STARTED]

        def progress(step: str, completed: int, total: int, errors: int) -> None:
            self.operations.set_live_counts(
                op_id, {"completed": completed, "total": total, "error": errors}
            )
            now = time.monotonic()
            if step != last_step[0] or now - last_write[0] >= PROGRESS_WRITE_INTERVAL:
                operation = self.operations.get(op_id)
                count = {**(operation.get("count") or {}), **self.operations.live_counts(op_id)}
                self.operations.update(op_id, status=step, count=count)
                last_step[0], last_write[0] = step, now

        try:
            report = run_import(
                op_id,
                staging=self.staging,
                users=self.users,
                workspace=self.workspace,
                contacts=self.contacts,
                selection=selection,
                importing_user_id=user_id,
                progress=progress,
                should_continue=lambda: self._still_valid(op_id),
            )
        except ImportCancelled:
            if self._valid(op_id):
                self.workers.stopped(op_id)
            else:
                self.operations.finish(
                    op_id, ImportStep.CANCELLED, error="Stopped by import.clear."
                )
            return
        except StagingIncomplete:
            self.operations.finish(
                op_id,
                ImportStep.FAILED,
                error="The prepared data is gone; upload the file again.",
            )
            return
        summary = dataclasses.asdict(report)
        operation = self.operations.get(op_id)
        # The prepare's warnings first, then what the import matched and left alone.
        warnings = [*(operation.get("warnings") or []), *summary.pop("warning_samples")]
        self.operations.finish(op_id, ImportStep.DONE, report=summary, warnings=warnings)

    # --- clear ------------------------------------------------------------------------

    def clear(self) -> None:
        """import.clear: invalidate every operation, stop what runs, drop all staging."""
        self.operations.invalidate_all()
        self.workers.wait_for_jobs()
        for op_id in self.staging.operations():
            self.staging.delete(op_id)

    # --- start-up and shutdown ---------------------------------------------------------

    def startup(self, *, recover: bool = True) -> None:
        """Start the workers, which end every operation a stop or crash cut off with a
        readable reason (work still queued goes on). With `recover` (the first server
        of a database), half-written files that no operation owns are removed too."""
        if recover:
            in_progress = {
                operation["_id"]
                for operation in self.operations.all()
                if operation["status"] in WAITING | IMPORTING
            }
            self.staging.discard_incomplete(keep=in_progress)
            for half_decoded in self.store_dir.glob(f"{DECODING_PREFIX}*"):
                half_decoded.unlink(missing_ok=True)
        self.workers.start()

    def _abandoned(self, operation: dict) -> None:
        op_id = operation["_id"]
        self.operations.update(op_id, status=ImportStep.FAILED, error=RESTART_REASON)
        if operation["status"] in (ImportStep.UPLOADING, ImportStep.DOWNLOADING_FILE):
            # The file never finished arriving; nothing can use it.
            shutil.rmtree(self.store_dir / op_id, ignore_errors=True)
        if not self.staging.is_complete(op_id):
            self.staging.delete(op_id)

    def shutdown(self) -> None:
        self.workers.shutdown()
