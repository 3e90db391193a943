"""The import API's lifecycle: operations, their steps, and the work behind them.

Wire-compatible with Rocket.Chat (step strings, error types, bodies), better inside:
files are prepared in the background (getImportFileData never parses), an import
starts only from `importer_user_selection`, `import.clear` really stops a running
import, a restart never leaves an operation stuck, every fetch goes through the one
download manager and its policy, and pending-file downloads never wipe another
operation's staging data.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import errno
import logging
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ferry.chat.convert import ImportCancelled, Selection, run_import
from ferry.chat.parsers import REGISTRY
from ferry.chat.parsers.base import ImportFileError, PrepareOptions
from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import (
    DOMAIN_BLOCKED,
    DOWNLOAD_TIMEOUT,
    NETWORK_ERROR,
    FetchError,
    check_url,
)
from ferry.kernel.errors import InvalidInput, MeteorError, PlainRocketChatError
from ferry.kernel.ids import now_iso, operation_id
from ferry.kernel.logs import redact_text
from ferry.kernel.statuses import DownloadStatus
from storage.operations import OperationRepository
from storage.staging import StagingArea, StagingIncomplete
from storage.users import UserRepository
from storage.workspace import WorkspaceStore

log = logging.getLogger("ferry.imports")

NEW = "importer_new"
UPLOADING = "importer_uploading"
DOWNLOADING_FILE = "importer_downloading_file"
FILE_LOADED = "importer_file_loaded"
PREPARING_STARTED = "importer_preparing_started"
PREPARING_USERS = "importer_preparing_users"
PREPARING_CHANNELS = "importer_preparing_channels"
PREPARING_MESSAGES = "importer_preparing_messages"
PREPARING_CONTACTS = "importer_preparing_contacts"
USER_SELECTION = "importer_user_selection"
IMPORTING_STARTED = "importer_importing_started"
IMPORTING_USERS = "importer_importing_users"
IMPORTING_CHANNELS = "importer_importing_channels"
IMPORTING_MESSAGES = "importer_importing_messages"
IMPORTING_CONTACTS = "importer_importing_contacts"
IMPORTING_FILES = "importer_importing_files"
FINISHING = "importer_finishing"
DONE = "importer_done"
FAILED = "importer_import_failed"
CANCELLED = "importer_import_cancelled"

PREPARING = {
    PREPARING_STARTED,
    PREPARING_USERS,
    PREPARING_CHANNELS,
    PREPARING_MESSAGES,
    PREPARING_CONTACTS,
}
IMPORTING = {
    IMPORTING_STARTED,
    IMPORTING_USERS,
    IMPORTING_CHANNELS,
    IMPORTING_MESSAGES,
    IMPORTING_CONTACTS,
    IMPORTING_FILES,
    FINISHING,
}
# getImportFileData answers {waiting: true} while the file arrives or is parsed.
WAITING = {UPLOADING, DOWNLOADING_FILE, FILE_LOADED} | PREPARING
FINISHED = {DONE, FAILED, CANCELLED}

RECENT_OPERATIONS = 20
PROGRESS_WRITE_INTERVAL = 1.0
PENDING_ATTEMPTS = 3
# At most this many per-file failure reasons are kept on a pending-files operation.
PENDING_REASONS = 50
HEADERS_WAIT_SECONDS = 60
DIRECT_MESSAGES_NAME = "Direct_Messages"
RESTART_REASON = "The server stopped while this operation was running; start it again."
DISK_FULL_REASON = "The server ran out of disk space; free some space and start it again."


def disk_full(failure: BaseException) -> bool:
    """A write refused for lack of space (or of quota), not a bug."""
    return isinstance(failure, OSError) and failure.errno in (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True)
class ImporterInfo:
    key: str
    name: str
    visible: bool
    takes_files: bool
    # The operation's `type`; Rocket.Chat writes "api" for API imports, else the name.
    operation_type: str | None = None


IMPORTERS: dict[str, ImporterInfo] = {
    **{key: ImporterInfo(key, parser.name, True, True) for key, parser in REGISTRY.items()},
    "api": ImporterInfo("api", "API", False, False, operation_type="api"),
    "pending-files": ImporterInfo("pending-files", "Pending Files", False, False),
    "pending-avatars": ImporterInfo("pending-avatars", "Pending Avatars", False, False),
}


def import_state(operation: dict | None) -> str:
    """import.status's state, derived from the operation as Rocket.Chat derives it."""
    if operation is None:
        return "none"
    status = operation["status"]
    if not operation.get("valid", True) and status != DONE:
        return "error"
    if status == NEW:
        return "new"
    if status in WAITING:
        return "loading"
    if status == USER_SELECTION:
        return "ready"
    if status in IMPORTING:
        return "importing"
    return {DONE: "done", FAILED: "error", CANCELLED: "canceled"}.get(status, "error")


def stored_file_name(user_id: str, file_name: str) -> str:
    """Rocket.Chat's `<Y><M-1><D><h><m><s>_<userId>_<name>` (UTC, unpadded), name made safe."""
    moment = time.gmtime()
    day = (moment.tm_year, moment.tm_mon - 1, moment.tm_mday)
    stamp = "".join(str(part) for part in (*day, moment.tm_hour, moment.tm_min, moment.tm_sec))
    base = Path(file_name.replace("\\", "/")).name.strip()
    safe = "".join(ch for ch in base if ch.isprintable() and ch not in "/\0").lstrip(".")
    return f"{stamp}_{user_id}_{safe[:200] or 'import-file'}"


_STEP_ORDER = {
    step: rank
    for rank, step in enumerate(
        (PREPARING_STARTED, PREPARING_USERS, PREPARING_CHANNELS, PREPARING_MESSAGES)
    )
}


class _StepSink:
    """Passes records to staging and moves the operation through the preparing steps.

    Every CHECK_EVERY records it asks whether to go on, so that import.clear and a
    shutdown stop a long parse instead of waiting for it.
    """

    CHECK_EVERY = 5000

    def __init__(self, writer, on_step: Callable[[str], None], should_continue: Callable[[], bool]):
        self._writer = writer
        self._on_step = on_step
        self._should_continue = should_continue
        self._step = PREPARING_STARTED
        self._seen = 0

    def _enter(self, step: str) -> None:
        self._seen += 1
        if self._seen % self.CHECK_EVERY == 0 and not self._should_continue():
            raise ImportCancelled("the operation was cleared while it was being prepared")
        # Steps only move forward: a parser that finds a channel among its messages (a
        # CSV DM pair, for one) must not flip the status back and forth, each flip being
        # a synced write of the operations file and a step going backwards for clients.
        if _STEP_ORDER[step] > _STEP_ORDER[self._step]:
            self._step = step
            self._on_step(step)

    def add_user(self, user: dict) -> None:
        self._enter(PREPARING_USERS)
        self._writer.add_user(user)

    def add_channel(self, channel: dict) -> None:
        self._enter(PREPARING_CHANNELS)
        self._writer.add_channel(channel)

    def add_message(self, message: dict) -> None:
        self._enter(PREPARING_MESSAGES)
        self._writer.add_message(message)

    def warn(self, message: str) -> None:
        self._writer.warn(message)


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
        uploads_dir: Path,
        uploads_display: str,
        import_folder: Path | None,
        max_upload_size: int,
        direct_message_max_users: int = 1,
        on_status: Callable[[dict], None] | None = None,
        on_work_done: Callable[[], None] | None = None,
    ):
        """Builds the service; `startup` starts its workers.

        `on_status` hears every stored status; `on_work_done` is called after each
        prepare or import, which allocate tens of MB of short-lived records.
        """
        self.operations = operations
        self.staging = staging
        self.users = users
        self.workspace = workspace
        self.downloads = downloads
        self.store_dir = store_dir
        self.uploads_dir = uploads_dir
        self.uploads_display = uploads_display
        self.import_folder = import_folder
        self.max_upload_size = max_upload_size
        self.direct_message_max_users = direct_message_max_users
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._worker: ThreadPoolExecutor | None = None
        self._side_work: ThreadPoolExecutor | None = None
        self._on_work_done = on_work_done
        self._jobs: dict[str, Future] = {}
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._live_counts: dict[str, dict] = {}
        # Told of every stored status (metrics and logs); it reports only changes.
        self._on_status = on_status

    # --- operations --------------------------------------------------------------

    def _importer(self, key: str, details: str) -> ImporterInfo:
        info = IMPORTERS.get(key)
        if info is None:
            raise MeteorError(
                "error-importer-not-defined",
                f"The importer ({key}) has no import class defined.",
                details,
            )
        return info

    def _update(self, operation_id: str, **fields) -> dict | None:
        fields["_updatedAt"] = now_iso()
        operation = self.operations.update(operation_id, fields)
        if "status" in fields and operation is not None:
            self._status_changed(operation)
        return operation

    def _status_changed(self, operation: dict) -> None:
        if self._on_status is None:
            return
        try:
            self._on_status(operation)
        except Exception:
            log.exception("status listener failed for import operation %s", operation["_id"])

    def _new_operation(self, user_id: str, info: ImporterInfo, *, clear: bool = True) -> dict:
        if clear:
            self.clear()
        now = now_iso()
        operation = {
            "_id": operation_id(),
            "type": info.operation_type or info.name,
            "importerKey": info.key,
            "ts": now,
            "status": NEW,
            "valid": True,
            "user": user_id,
            "_updatedAt": now,
            "count": {"total": 0, "completed": 0, "error": 0},
        }
        self.operations.insert(operation)
        self._status_changed(operation)
        return operation

    def _latest(self, details: str) -> dict:
        operation = self.operations.latest()
        if operation is None:
            raise MeteorError("error-operation-not-found", "Import Operation Not Found", details)
        return operation

    def current_operation(self) -> dict | None:
        return self._with_live_counts(self.operations.latest())

    def latest_operations(self) -> list[dict]:
        return [self._with_live_counts(op) for op in self.operations.recent(RECENT_OPERATIONS)]

    def visible_importers(self) -> list[dict]:
        return [{"key": i.key, "name": i.name} for i in IMPORTERS.values() if i.visible]

    def _with_live_counts(self, operation: dict | None) -> dict | None:
        if operation is not None and operation["_id"] in self._live_counts:
            operation["count"] = {
                **operation.get("count", {}),
                **self._live_counts[operation["_id"]],
            }
        return operation

    # --- getting the file ----------------------------------------------------------

    def upload(
        self,
        user_id: str,
        file_name: str,
        content_type: str,
        importer_key: str,
        content: str | IO[bytes],
        *,
        password: str | None = None,
    ) -> dict:
        """uploadImportFile: base64 text (Rocket.Chat's JSON body) or a binary stream.

        `password` decrypts an encrypted export; it is kept in memory only, never stored.

        Raises:
            MeteorError: unknown importer, or the file is larger than the upload cap.
            InvalidInput: binaryContent is not base64.
        """
        info = self._importer(importer_key, "uploadImportFile")
        if not info.takes_files:
            raise MeteorError(
                "error-importer-not-defined",
                f"The importer ({importer_key}) takes no file.",
                "uploadImportFile",
            )
        if isinstance(content, str):
            if len(content) * 3 // 4 > self.max_upload_size:
                raise self._too_large()
            try:
                data = base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInput("binaryContent is not valid base64.") from None
        operation = self._new_operation(user_id, info)
        stored = stored_file_name(user_id, file_name)
        target_dir = self.store_dir / operation["_id"]
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / stored
        self._update(operation["_id"], status=UPLOADING, file=stored, contentType=content_type)
        try:
            if isinstance(content, str):
                target.write_bytes(data)
            else:
                self._copy_capped(content, target)
        except BaseException as failure:
            target.unlink(missing_ok=True)
            full = disk_full(failure)
            reason = DISK_FULL_REASON if full else "The upload did not complete."
            self._update(operation["_id"], status=FAILED, error=reason)
            if full:
                raise MeteorError("error-disk-full", DISK_FULL_REASON, "uploadImportFile") from None
            raise
        self._file_loaded(operation["_id"], target, password)
        return self.operations.get(operation["_id"])

    def _too_large(self) -> MeteorError:
        return MeteorError(
            "error-file-too-large",
            f"The import file is larger than {self.max_upload_size} bytes.",
            "uploadImportFile",
        )

    def _copy_capped(self, source: IO[bytes], target: Path) -> None:
        written = 0
        with open(target, "wb") as out:
            while chunk := source.read(1024 * 1024):
                written += len(chunk)
                if written > self.max_upload_size:
                    raise self._too_large()
                out.write(chunk)

    def download_public(
        self, user_id: str, file_url: str, importer_key: str, *, password: str | None = None
    ) -> dict:
        """downloadPublicImportFile: an http(s) URL through the download manager, or a
        path inside the admin's import folder.

        Raises:
            MeteorError: unknown importer, or a missing / disallowed local path.
            PlainRocketChatError: the fetch was refused or failed before its body.
        """
        info = self._importer(importer_key, "downloadImportFile")
        if not file_url.startswith("http"):
            local = self._local_import_path(file_url)
            operation = self._new_operation(user_id, info)
            if local.is_dir():
                self._update(operation["_id"], file=str(local))
                self._file_loaded(operation["_id"], local, password)
            else:
                target_dir = self.store_dir / operation["_id"]
                target_dir.mkdir(parents=True, exist_ok=True)
                target = target_dir / stored_file_name(user_id, local.name)
                self._update(operation["_id"], status=UPLOADING, file=target.name)
                shutil.copyfile(local, target)
                self._file_loaded(operation["_id"], target, password)
            return self.operations.get(operation["_id"])
        try:
            checked_url = check_url(file_url, self.downloads.policy)
        except FetchError as refusal:
            raise self._fetch_failure(refusal) from None
        operation = self._new_operation(user_id, info)
        op_id = operation["_id"]
        target_dir = self.store_dir / op_id
        target_dir.mkdir(parents=True, exist_ok=True)
        self._update(op_id, status=DOWNLOADING_FILE)

        def finished(record: dict) -> None:
            if record["status"] == DownloadStatus.COMPLETED:
                path = target_dir / record["filename"]
                self._update(op_id, file=path.name)
                self._file_loaded(op_id, path, password)
            else:
                self._update(
                    op_id, status=FAILED, error=record.get("message") or record.get("error")
                )

        try:
            handle = self.downloads.start(
                checked_url, target_dir, f"imports/{op_id}", kind="import", on_finished=finished
            )
            handle.wait_for_headers(HEADERS_WAIT_SECONDS)
        except (FetchError, TimeoutError) as failure:
            refusal = (
                failure
                if isinstance(failure, FetchError)
                else FetchError(DOWNLOAD_TIMEOUT, "no answer")
            )
            self._update(op_id, status=FAILED, error=refusal.message)
            raise self._fetch_failure(refusal) from None
        return self.operations.get(op_id)

    @staticmethod
    def _fetch_failure(refusal: FetchError) -> PlainRocketChatError:
        # Rocket.Chat answers an SSRF refusal with exactly this string.
        if refusal.code == DOMAIN_BLOCKED:
            log.warning("downloadPublicImportFile refused: %s", redact_text(refusal.message))
            return PlainRocketChatError("error-ssrf-validation-failed")
        return PlainRocketChatError(refusal.message)

    def _local_import_path(self, raw: str) -> Path:
        missing = MeteorError("error-import-file-missing", raw, "downloadPublicImportFile")
        if self.import_folder is None or "\0" in raw:
            raise missing
        root = self.import_folder.resolve()
        candidate = Path(raw)
        try:
            resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
            if not resolved.is_relative_to(root) or not resolved.exists():
                raise missing
        except OSError:  # a name too long for the file system, a loop of links, ...
            raise missing from None
        return resolved

    # --- preparing -------------------------------------------------------------------

    def _file_loaded(self, op_id: str, path: Path, password: str | None = None) -> None:
        self._update(op_id, status=FILE_LOADED)
        self._submit(op_id, self._prepare, op_id, path, password)

    def _submit(self, op_id: str, work, *args) -> None:
        with self._lock:
            if self._worker is None:
                raise RuntimeError("ImportService.startup() has not been called")
            self._jobs = {key: job for key, job in self._jobs.items() if not job.done()}
            self._jobs[op_id] = self._worker.submit(self._guarded, op_id, work, *args)

    def _guarded(self, op_id: str, work, *args) -> None:
        try:
            work(*args)
        except Exception as exc:  # a bug must fail the operation, not leave it running
            if disk_full(exc):
                log.error("import operation %s failed: %s", op_id, exc)
                # A failed operation never imports: its staging only holds the space
                # that the operation's status update and the next import need.
                with contextlib.suppress(OSError):
                    self.staging.delete(op_id)
                self._update(op_id, status=FAILED, error=DISK_FULL_REASON)
            else:
                log.exception("import operation %s failed", op_id)
                self._update(op_id, status=FAILED, error=f"Internal error: {exc}")
        finally:
            self._live_counts.pop(op_id, None)
            if self._on_work_done is not None:
                try:
                    self._on_work_done()
                except Exception:
                    log.exception("on_work_done callback failed")

    def _still_valid(self, op_id: str) -> bool:
        operation = self.operations.get(op_id)
        return bool(operation and operation.get("valid", True)) and not self._stop.is_set()

    def _prepare(self, op_id: str, path: Path, password: str | None) -> None:
        operation = self.operations.get(op_id)
        if operation is None or not self._still_valid(op_id):
            return
        parser = REGISTRY[operation["importerKey"]]
        self._update(op_id, status=PREPARING_STARTED)
        writer = self.staging.writer(op_id)
        sink = _StepSink(
            writer, lambda step: self._update(op_id, status=step), lambda: self._still_valid(op_id)
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
            self._update(op_id, status=FAILED, error=failure.message)
            return
        except ImportCancelled:
            writer.abort()
            if self._stop.is_set():
                self._update(op_id, status=FAILED, error=RESTART_REASON)
            return
        except BaseException:
            writer.abort()
            raise
        counts = writer.finish()
        if not self._still_valid(op_id):
            return
        total = counts["users"] + counts["channels"] + counts["messages"]
        if total == 0:
            self._update(op_id, status=FAILED, error="No valid record found in the import file.")
            return
        self._update(
            op_id,
            status=USER_SELECTION,
            count={
                "total": total,
                "completed": 0,
                "error": 0,
                "users": counts["users"],
                "channels": counts["channels"],
                "messages": counts["messages"],
            },
            warnings=self.staging.warnings(op_id, limit=50),
        )

    def _existing_import_id(self, username: str) -> str | None:
        user = self.users.by_username(username)
        if user is None:
            return None
        return (user.get("importIds") or [user["username"]])[0]

    def file_data(self) -> dict:
        """getImportFileData: {waiting: true} while busy, else the selection."""
        operation = self._latest("getImportFileData")
        info = self._importer(operation["importerKey"], "getImportFileData")
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
        for channel in selection.get("channels", []):
            if channel.get("channel_id") == "__directMessages__":
                channel["name"] = DIRECT_MESSAGES_NAME
        return {"name": info.name, **selection}

    def progress(self) -> dict:
        operation = self._with_live_counts(self._latest("getImportProgress"))
        info = self._importer(operation["importerKey"], "getImportProgress")
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
        operation = self._latest("startImport")
        self._importer(operation["importerKey"], "startImport")
        self._begin_import(user_id, operation, Selection.from_input(selection_input), "startImport")

    def _begin_import(
        self, user_id: str, operation: dict, selection: Selection, details: str
    ) -> None:
        with self._lock:
            operation = self.operations.get(operation["_id"])
            if operation["status"] != USER_SELECTION or not operation.get("valid", True):
                raise MeteorError(
                    "error-invalid-operation-status",
                    f"The import operation is {operation['status']}, not ready to import",
                    details,
                )
            self._update(operation["_id"], status=IMPORTING_STARTED)
        self._submit(operation["_id"], self._import, operation["_id"], selection, user_id)

    def _import(self, op_id: str, selection: Selection, user_id: str) -> None:
        last_write = [0.0]
        last_step = [IMPORTING_STARTED]

        def progress(step: str, completed: int, total: int, errors: int) -> None:
            self._live_counts[op_id] = {"completed": completed, "total": total, "error": errors}
            now = time.monotonic()
            if step != last_step[0] or now - last_write[0] >= PROGRESS_WRITE_INTERVAL:
                operation = self.operations.get(op_id)
                count = {**(operation.get("count") or {}), **self._live_counts[op_id]}
                self._update(op_id, status=step, count=count)
                last_step[0], last_write[0] = step, now

        try:
            report = run_import(
                op_id,
                staging=self.staging,
                users=self.users,
                workspace=self.workspace,
                selection=selection,
                importing_user_id=user_id,
                progress=progress,
                should_continue=lambda: self._still_valid(op_id),
            )
        except ImportCancelled:
            reason = "Stopped by import.clear." if not self._stop.is_set() else RESTART_REASON
            self._finish(op_id, CANCELLED if not self._stop.is_set() else FAILED, error=reason)
            return
        except StagingIncomplete:
            self._finish(op_id, FAILED, error="The prepared data is gone; upload the file again.")
            return
        self._finish(op_id, DONE, report=dataclasses.asdict(report))

    def _finish(self, op_id: str, status: str, **fields) -> None:
        operation = self.operations.get(op_id)
        count = {**(operation.get("count") or {}), **self._live_counts.get(op_id, {})}
        self._update(op_id, status=status, count=count, **fields)

    # --- clear and the API importer ---------------------------------------------------

    def clear(self) -> None:
        """import.clear: invalidate every operation, stop what runs, drop all staging."""
        self.operations.invalidate_all(now_iso())
        self._wait_for_jobs()
        for op_id in self.staging.operations():
            self.staging.delete(op_id)

    def _wait_for_jobs(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            with contextlib.suppress(Exception):
                job.result(timeout=60)

    def new_api_operation(self, user_id: str) -> dict:
        return self._new_operation(user_id, IMPORTERS["api"])

    def status(self) -> dict:
        operation = self.current_operation()
        if operation is None:
            return {"state": "none"}
        return {"state": import_state(operation), "operation": operation}

    def add_users(self, users: list[dict]) -> None:
        """import.addUsers, with Rocket.Chat's checks and messages."""
        if not users:
            return
        operation = self.operations.latest()
        if operation is None or not operation.get("valid", True):
            raise PlainRocketChatError("Import operation not initialized.")
        state = import_state(operation)
        if state in ("loading", "importing"):
            raise PlainRocketChatError("The current import operation can not receive new data.")
        if state in ("done", "error", "canceled"):
            raise PlainRocketChatError("The current import operation is already finished.")
        for user in users:
            if not any(user.get("emails") or []) or not any(user.get("importIds") or []):
                raise PlainRocketChatError("Users are missing required data.")
            if any(role not in ("admin", "user", "bot") for role in user.get("roles") or []):
                raise PlainRocketChatError(
                    "One or more of the users have been assigned invalid roles."
                )
        writer = self.staging.writer(operation["_id"], append=True)
        for user in users:
            roles = list(dict.fromkeys([*(user.get("roles") or []), "user"]))
            record = {**user, "emails": [e for e in user["emails"] if e], "roles": roles}
            record["type"] = user.get("type") or ("bot" if "bot" in roles else "user")
            writer.add_user(record)
        counts = writer.finish()
        count = dict(operation.get("count") or {})
        count["users"] = counts["users"]
        count["total"] = counts["users"] + counts["channels"] + counts["messages"]
        self._update(operation["_id"], status=USER_SELECTION, count=count)

    def run_api(self, user_id: str) -> None:
        """import.run: import every staged user of the API operation."""
        operation = self.operations.latest()
        if operation is None or not operation.get("valid", True):
            raise PlainRocketChatError("error-operation-not-found")
        if operation["status"] != USER_SELECTION:
            raise PlainRocketChatError("error-invalid-operation-status")
        if operation["importerKey"] not in IMPORTERS:
            raise PlainRocketChatError("error-importer-not-defined")
        self._begin_import(user_id, operation, Selection.everything(), "import.run")

    # --- pending files and avatars ----------------------------------------------------

    def download_pending_files(self, user_id: str) -> int:
        """downloadPendingFiles: counts messages still waiting for a file and fetches
        each distinct file once, in the background, through the download manager.
        It creates its own operation and leaves every other operation's data alone."""
        count = self.workspace.pending_file_count()
        operation = self._new_operation(user_id, IMPORTERS["pending-files"], clear=False)
        if count == 0:
            self._update(operation["_id"], status=DONE)
            return 0
        self._update(
            operation["_id"],
            status=IMPORTING_FILES,
            count={"total": count, "completed": 0, "error": 0, "messages": count},
        )
        self._side_work.submit(
            self._guarded, operation["_id"], self._fetch_pending_files, operation["_id"]
        )
        return count

    def _fetch_pending_files(self, op_id: str) -> None:
        files: dict[str, tuple[dict, int]] = {}
        for message in self.workspace.pending_file_messages():
            pending = message["_importFile"]
            known = files.get(pending["id"])
            files[pending["id"]] = (pending, (known[1] if known else 0) + 1)
        completed = errors = 0
        # Why each file failed, so that a refused or broken link is explained somewhere.
        reasons: list[str] = []
        for file_id, (pending, messages) in files.items():
            if self._stop.is_set():
                break
            record, reason = self._fetch_with_retries(pending, file_id)
            if record is not None and record["status"] == DownloadStatus.COMPLETED:
                url = f"/{self.uploads_display}/{file_id}/{record['filename']}"
                attachment = {"title": record["filename"], "title_link": url, "type": "file"}
                self.workspace.mark_files_downloaded([(file_id, url, attachment)])
                completed += messages
            else:
                errors += messages
                completed += messages
                if record is not None:
                    reason = f"{record.get('message')} [{record.get('error')}]"
                if len(reasons) < PENDING_REASONS:
                    reasons.append(f"file {file_id}: {reason}")
            self._live_counts[op_id] = {"completed": completed, "error": errors}
        if reasons:
            self._update(op_id, warnings=reasons)
        self._finish(op_id, DONE if not self._stop.is_set() else FAILED)

    def _fetch_with_retries(self, pending: dict, file_id: str) -> tuple[dict | None, str | None]:
        """The download's final record, or (None, why no download was started)."""
        url = pending.get("downloadUrl") or ""
        if pending.get("external") or not url.startswith("http"):
            return None, "not a downloadable http(s) link"
        directory = (
            self.uploads_dir / "".join(ch for ch in file_id if ch.isalnum() or ch in "-_")[:64]
        )
        directory.mkdir(parents=True, exist_ok=True)
        display = f"{self.uploads_display}/{directory.name}"
        for attempt in range(PENDING_ATTEMPTS):
            try:
                handle = self.downloads.start(
                    url, directory, display, filename=pending.get("name"), kind="pending-file"
                )
            except FetchError as refusal:
                return None, f"{refusal.message} [{refusal.code}]"
            record = handle.wait()
            if record is None:
                return None, "the download did not finish"
            if record["status"] == DownloadStatus.COMPLETED:
                return record, None
            if record.get("error") not in (NETWORK_ERROR, DOWNLOAD_TIMEOUT) or self._stop.is_set():
                return record, None
            time.sleep(min(2**attempt, 8))
        return record, None

    def download_pending_avatars(self, user_id: str) -> int:
        """downloadPendingAvatars: http(s) avatars through the manager; data: URIs stored
        directly instead of staying pending forever."""
        pending = [u for u in self.users.with_pending_avatars()]
        operation = self._new_operation(user_id, IMPORTERS["pending-avatars"], clear=False)
        if not pending:
            self._update(operation["_id"], status=DONE)
            return 0
        self._update(
            operation["_id"],
            status=IMPORTING_FILES,
            count={"total": len(pending), "completed": 0, "error": 0},
        )
        self._side_work.submit(
            self._guarded, operation["_id"], self._fetch_avatars, operation["_id"], pending
        )
        return len(pending)

    def _fetch_avatars(self, op_id: str, pending: list[dict]) -> None:
        errors = 0
        avatars = self.uploads_dir.parent / "avatars"
        avatars.mkdir(parents=True, exist_ok=True)
        for completed, user in enumerate(pending, start=1):
            url = user["_pendingAvatarUrl"]
            stored = self._store_avatar(user["_id"], url, avatars)
            if stored:
                self.users.update(
                    user["_id"],
                    {"avatarOrigin": "url", "avatarETag": stored, "_pendingAvatarUrl": None},
                )
            else:
                errors += 1
            self._live_counts[op_id] = {"completed": completed, "error": errors}
        self._finish(op_id, DONE)

    def _store_avatar(self, user_id: str, url: str, avatars: Path) -> str | None:
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
            if len(data) > 5 * 1024 * 1024:
                return None
            (avatars / user_id).write_bytes(data)
            return user_id
        directory = avatars / f".{user_id}.incoming"
        directory.mkdir(exist_ok=True)
        try:
            record = self.downloads.start(
                url, directory, "avatars", filename=user_id, kind="pending-avatar"
            ).wait()
        except FetchError:
            return None
        if record is None or record["status"] != DownloadStatus.COMPLETED:
            shutil.rmtree(directory, ignore_errors=True)
            return None
        (directory / record["filename"]).replace(avatars / user_id)
        shutil.rmtree(directory, ignore_errors=True)
        return user_id

    # --- start-up and shutdown ---------------------------------------------------------

    def startup(self) -> None:
        """Start the workers, after making sure a restart never leaves an operation stuck:
        whatever was running ends failed with a readable reason, and half-written staging
        and import files are discarded."""
        self.staging.discard_incomplete()
        for operation in self.operations.all():
            if operation["status"] in WAITING | IMPORTING:
                self._update(operation["_id"], status=FAILED, error=RESTART_REASON)
            if operation["status"] in (UPLOADING, DOWNLOADING_FILE):
                # The file never finished arriving; nothing can use it.
                shutil.rmtree(self.store_dir / operation["_id"], ignore_errors=True)
        with self._lock:
            # One prepare or import at a time, like Rocket.Chat's single current operation.
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ferry-import")
            self._side_work = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ferry-pending")

    def shutdown(self) -> None:
        self._stop.set()
        for pool in (self._worker, self._side_work):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
