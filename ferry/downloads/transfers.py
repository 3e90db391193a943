"""The file server's downloads: `?download=URL` into the file tree, through the one manager,
and who sees and cancels which.

A user sees and cancels the downloads they started. `view-all-downloads` shows everyone's
and `manage-all-downloads` cancels everyone's; others' records are shown with the secrets
in their URLs redacted, as the logs show them. A download the caller may not see is
answered as unknown, so its id does not even confirm that it exists.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ferry.accounts import Accounts
from ferry.downloads import names
from ferry.downloads.checksums import Checksum
from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import FetchError
from ferry.downloads.records import Owner, owned_by, without_secrets
from ferry.files import FileTree, split_relative
from ferry.kernel.errors import Conflict, DownloadRefused, InvalidInput, NotFound
from ferry.kernel.statuses import DownloadStatus

DOWNLOAD_FORBIDDEN = "DOWNLOAD_FORBIDDEN"
VIEW_ALL_DOWNLOADS = "view-all-downloads"
MANAGE_ALL_DOWNLOADS = "manage-all-downloads"
# A batch item whose directory cannot be written to (unsafe, reserved, a file).
INVALID_DIRECTORY = "INVALID_DIRECTORY"
# A checksum that is not ALGO:HEX with a known algorithm and a digest of its length.
INVALID_CHECKSUM = "INVALID_CHECKSUM"


def refused(code: str, message: str, filename: str | None, path: str | None) -> dict:
    """A batch item that did not start, in the shape of a start's answer."""
    return {
        "download_id": None,
        "filename": filename,
        "path": path,
        "success": False,
        "message": message,
        "error": code,
    }


class Transfers:
    def __init__(
        self, manager: DownloadManager, files: FileTree, accounts: Accounts, *, allowed: bool
    ):
        self.manager = manager
        self.files = files
        self.accounts = accounts
        self.allowed = allowed

    def start(
        self,
        user: dict,
        raw_directory: str,
        url: str,
        *,
        filename: str | None,
        timeout: int | None,
        checksum: str | None = None,
    ) -> dict:
        """Checks in the documented order: permission, the flag, the URL, the directory.

        Raises:
            Forbidden: the user lacks `download-files`.
            DownloadRefused: DOWNLOAD_FORBIDDEN, INVALID_URL, DOMAIN_BLOCKED or
                INVALID_CHECKSUM.
            InvalidInput: the directory is unsafe or names a file.
        """
        self._may_download(user)
        return self._start(
            user, raw_directory, url, filename=filename, timeout=timeout, checksum=checksum
        )

    def start_batch(self, user: dict, items: list[dict]) -> list[dict]:
        """Start each item (`url`, `directory`, optional `filename` and `timeout`) with
        the checks of `start`, in order; a refused item is answered with its code and
        does not stop the others.

        Raises:
            Forbidden: the user lacks `download-files`.
            DownloadRefused: DOWNLOAD_FORBIDDEN, for the whole batch.
        """
        self._may_download(user)
        # Items into one directory share its checks and creation, done once per batch.
        directories: dict[str, tuple[Path, str]] = {}
        try:
            return [self._start_item(user, item, directories) for item in items]
        finally:
            # One disk write for the whole batch, before it is answered.
            self.manager.flush_records()

    def _start_item(self, user: dict, item: dict, directories: dict[str, tuple[Path, str]]) -> dict:
        try:
            return self._start(
                user,
                item["directory"],
                item["url"],
                filename=item.get("filename"),
                timeout=item.get("timeout"),
                checksum=item.get("checksum"),
                durable=False,
                directories=directories,
            )
        except DownloadRefused as refusal:
            return refused(refusal.code, refusal.message, refusal.filename, refusal.path)
        except (InvalidInput, NotFound) as problem:
            guessed = self._guess_name(item["url"], item.get("filename"))
            return refused(INVALID_DIRECTORY, problem.message, guessed, None)

    def _may_download(self, user: dict) -> None:
        self.accounts.authorize(user, "download-files")
        if not self.allowed:
            raise DownloadRefused(
                DOWNLOAD_FORBIDDEN, "The server runs without --allow-download; downloads are off."
            )

    def _start(
        self,
        user: dict,
        raw_directory: str,
        url: str,
        *,
        filename: str | None,
        timeout: int | None,
        checksum: str | None = None,
        durable: bool = True,
        directories: dict[str, tuple[Path, str]] | None = None,
    ) -> dict:
        display = "/".join(split_relative(raw_directory))
        try:
            try:
                expected = Checksum.parse(checksum) if checksum is not None else None
            except ValueError as problem:
                raise FetchError(INVALID_CHECKSUM, str(problem)) from None
            target = self.manager.policy.check_url(url)
            if directories is not None and raw_directory in directories:
                directory, display = directories[raw_directory]
            else:
                directory, display = self.files.directory_for_writing(raw_directory)
                if directories is not None:
                    directories[raw_directory] = directory, display
            handle = self.manager.start(
                target,
                directory,
                display,
                filename=filename,
                timeout=timeout,
                owner=Owner.of(user),
                checksum=expected,
                durable=durable,
            )
        except FetchError as refusal:
            guessed = self._guess_name(url, filename)
            path = f"{display}/{guessed}" if display else guessed
            raise DownloadRefused(
                refusal.code, refusal.message, filename=guessed, path=path
            ) from None
        record = handle.record()
        return {
            "download_id": handle.id,
            "filename": record["filename"],
            "path": record["file_path"],
            "success": True,
            "message": "Download started",
            "error": None,
        }

    @staticmethod
    def _guess_name(url: str, filename: str | None) -> str:
        """The name a refused download would have had, for the refusal's answer."""
        try:
            url_path = urlsplit(url).path
        except ValueError:
            url_path = ""
        return names.choose_name(filename, url_path=url_path)

    # --- what a user sees ----------------------------------------------------------

    @staticmethod
    def _as_seen_by(user: dict, record: dict) -> dict:
        return record if owned_by(record, user["_id"]) else without_secrets(record)

    def _visible(self, user: dict, records: list[dict]) -> list[dict]:
        """`records` the user may see, as the user may see them."""
        sees_all = VIEW_ALL_DOWNLOADS in self.accounts.permissions_of(user)
        return [
            self._as_seen_by(user, record)
            for record in records
            if sees_all or owned_by(record, user["_id"])
        ]

    def viewer(self, user: dict):
        """A function giving a record as `user` may see it, or None if they may not,
        with the user's permissions as they are now (for a long-lived stream)."""
        sees_all = VIEW_ALL_DOWNLOADS in self.accounts.permissions_of(user)

        def view(record: dict) -> dict | None:
            if owned_by(record, user["_id"]):
                return record
            return without_secrets(record) if sees_all else None

        return view

    def active(self, user: dict, raw_directory: str | None = None) -> list[dict]:
        if raw_directory is None:
            return self._visible(user, self.manager.active())
        return self._visible(user, self.manager.active("/".join(split_relative(raw_directory))))

    def history(self, user: dict) -> list[dict]:
        return self._visible(user, self.manager.history())

    def get(self, user: dict, download_id: str) -> dict:
        """Raises NotFound for an unknown id and for a download the user may not see."""
        record = self.manager.get(download_id)
        shown = self._visible(user, [record]) if record is not None else []
        if not shown:
            raise NotFound(f"No download with id {download_id}.")
        return shown[0]

    def _may_control(self, user: dict, download_id: str) -> dict:
        """The record of a download `user` may cancel, pause or resume: their own, or
        anyone's with `manage-all-downloads`.

        Raises:
            NotFound: an unknown id, or a download the user may neither see nor control.
            Forbidden: someone else's download, seen through `view-all-downloads` only.
        """
        record = self.manager.get(download_id)
        granted = self.accounts.permissions_of(user)
        own = record is not None and owned_by(record, user["_id"])
        if record is None or not (own or granted & {VIEW_ALL_DOWNLOADS, MANAGE_ALL_DOWNLOADS}):
            raise NotFound(f"No download with id {download_id}.")
        if not own:
            self.accounts.authorize(user, MANAGE_ALL_DOWNLOADS)
        return record

    def cancel(self, user: dict, download_id: str) -> dict:
        """Stop the user's own download (queued, running or paused), or anyone's with
        `manage-all-downloads`, and answer once it has stopped.

        Raises NotFound and Forbidden as `_may_control`; Conflict once it has finished.
        """
        self._may_control(user, download_id)
        if not self.manager.cancel(download_id):
            raise Conflict("The download has already finished.")
        return self._as_seen_by(user, self.manager.get(download_id))

    def pause(self, user: dict, download_id: str) -> dict:
        """Pause a queued or running download, keeping what it has received when the
        remote lets it go on from there.

        Raises NotFound and Forbidden as `_may_control`; Conflict when it has finished,
        is paused already, or is part of an import.
        """
        record = self._may_control(user, download_id)
        if record["status"] == DownloadStatus.PAUSED:
            raise Conflict("The download is paused already.")
        try:
            paused = self.manager.pause(download_id)
        except ValueError as refusal:
            raise Conflict(str(refusal)) from None
        if paused is None:
            raise Conflict("The download has already finished.")
        return self._as_seen_by(user, paused)

    def resume(self, user: dict, download_id: str) -> tuple[dict, bool]:
        """Go on with a paused download; also says whether it starts over.

        Raises NotFound and Forbidden as `_may_control`; Conflict when it is not paused;
        DownloadRefused(DOWNLOAD_FORBIDDEN) while downloads are off; DownloadRefused
        (SERVER_STOPPED) during shutdown.
        """
        self._may_control(user, download_id)
        self._may_download(user)
        try:
            resumed = self.manager.resume(download_id)
        except FetchError as refusal:
            raise DownloadRefused(refusal.code, refusal.message) from None
        if resumed is None:
            raise Conflict("Only a paused download can be resumed.")
        record, restarted = resumed
        return self._as_seen_by(user, record), restarted
