"""The file server's downloads: `?download=URL` into the file tree, through the one manager,
and who sees and cancels which.

A user sees and cancels the downloads they started. `view-all-downloads` shows everyone's
and `manage-all-downloads` cancels everyone's; others' records are shown with the secrets
in their URLs redacted, as the logs show them. A download the caller may not see is
answered as unknown, so its id does not even confirm that it exists.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ferry.accounts import Accounts
from ferry.downloads import names
from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import FetchError
from ferry.downloads.records import Owner, owned_by, without_secrets
from ferry.files import FileTree, split_relative
from ferry.kernel.errors import Conflict, DownloadRefused, NotFound

DOWNLOAD_FORBIDDEN = "DOWNLOAD_FORBIDDEN"
VIEW_ALL_DOWNLOADS = "view-all-downloads"
MANAGE_ALL_DOWNLOADS = "manage-all-downloads"


class Transfers:
    def __init__(
        self, manager: DownloadManager, files: FileTree, accounts: Accounts, *, allowed: bool
    ):
        self.manager = manager
        self.files = files
        self.accounts = accounts
        self.allowed = allowed

    def start(
        self, user: dict, raw_directory: str, url: str, *, filename: str | None, timeout: int | None
    ) -> dict:
        """Checks in the documented order: permission, the flag, the URL, the directory.

        Raises:
            Forbidden: the user lacks `download-files`.
            DownloadRefused: DOWNLOAD_FORBIDDEN, INVALID_URL or DOMAIN_BLOCKED.
            InvalidInput: the directory is unsafe or names a file.
        """
        self.accounts.authorize(user, "download-files")
        if not self.allowed:
            raise DownloadRefused(
                DOWNLOAD_FORBIDDEN, "The server runs without --allow-download; downloads are off."
            )
        display = "/".join(split_relative(raw_directory))
        try:
            target = self.manager.policy.check_url(url)
            directory, display = self.files.directory_for_writing(raw_directory)
            handle = self.manager.start(
                target, directory, display, filename=filename, timeout=timeout, owner=Owner.of(user)
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

    def _manageable(self, user: dict, download_id: str) -> None:
        """Let the user change their own download, or anyone's with `manage-all-downloads`.

        Raises:
            NotFound: an unknown id, or a download the user may neither see nor change.
            Forbidden: someone else's download, seen through `view-all-downloads` only.
        """
        record = self.manager.get(download_id)
        granted = self.accounts.permissions_of(user)
        own = record is not None and owned_by(record, user["_id"])
        if record is None or not (own or granted & {VIEW_ALL_DOWNLOADS, MANAGE_ALL_DOWNLOADS}):
            raise NotFound(f"No download with id {download_id}.")
        if not own:
            self.accounts.authorize(user, MANAGE_ALL_DOWNLOADS)

    def cancel(self, user: dict, download_id: str) -> dict:
        """Stop a download (see `_manageable`); answers once the transfer has stopped.

        Raises NotFound, Forbidden, or Conflict when the download has finished.
        """
        self._manageable(user, download_id)
        if not self.manager.cancel(download_id):
            raise Conflict("The download has already finished.")
        return self._as_seen_by(user, self.manager.get(download_id))

    def pause(self, user: dict, download_id: str) -> dict:
        """Pause a queued or running file download (see `_manageable`).

        Raises NotFound, Forbidden, or Conflict when it cannot be paused.
        """
        self._manageable(user, download_id)
        record = self.manager.pause(download_id)
        if record is None:
            raise Conflict("Only a queued or running file download can be paused.")
        return self._as_seen_by(user, record)

    def resume(self, user: dict, download_id: str) -> dict:
        """Resume a paused download (see `_manageable`): the download, `resumed_from` and
        `restarted`.

        Raises NotFound, Forbidden, DownloadRefused(DOWNLOAD_FORBIDDEN) when downloads are
        off, or Conflict when it is not paused or the server is shutting down.
        """
        self._manageable(user, download_id)
        if not self.allowed:
            raise DownloadRefused(
                DOWNLOAD_FORBIDDEN, "The server runs without --allow-download; downloads are off."
            )
        try:
            resumed = self.manager.resume(download_id)
        except FetchError as refusal:
            raise Conflict(f"The download cannot resume now: {refusal.message}.") from None
        if resumed is None:
            raise Conflict("Only a paused download can be resumed.")
        return {**resumed, "download": self._as_seen_by(user, resumed["download"])}
