"""The file server's downloads: `?download=URL` into the file tree, through the one manager."""

from __future__ import annotations

from urllib.parse import urlsplit

from ferry.accounts import Accounts
from ferry.downloads import names
from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import FetchError
from ferry.files import FileTree, split_relative
from ferry.kernel.errors import Conflict, DownloadRefused, NotFound

DOWNLOAD_FORBIDDEN = "DOWNLOAD_FORBIDDEN"


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
                target, directory, display, filename=filename, timeout=timeout
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

    def active(self, raw_directory: str | None = None) -> list[dict]:
        if raw_directory is None:
            return self.manager.active()
        return self.manager.active("/".join(split_relative(raw_directory)))

    def history(self) -> list[dict]:
        return self.manager.history()

    def get(self, download_id: str) -> dict:
        record = self.manager.get(download_id)
        if record is None:
            raise NotFound(f"No download with id {download_id}.")
        return record

    def cancel(self, download_id: str) -> dict:
        """Raises NotFound for an unknown id, Conflict for a finished download."""
        self.get(download_id)
        if not self.manager.cancel(download_id):
            raise Conflict("The download has already finished.")
        return self.get(download_id)
