"""Builds the domain services one app instance uses, over one data directory."""

from __future__ import annotations

from dataclasses import dataclass

from downloader.manager import DownloadManager
from downloader.policy import FetchPolicy
from ferry.accounts import Accounts, PasswordHasher
from ferry.config import Config
from ferry.files import FileTree
from ferry.transfers import Transfers
from storage.downloads import DownloadRepository
from storage.store import Store
from storage.users import UserRepository

# How long shutdown waits for transfers to record their end before the store closes.
SHUTDOWN_GRACE_SECONDS = 10


@dataclass
class Services:
    config: Config
    store: Store
    accounts: Accounts
    files: FileTree
    downloads: DownloadManager
    transfers: Transfers

    @classmethod
    def open(cls, config: Config) -> Services:
        """Raises storage.store.DataDirLocked when another process owns the data directory."""
        config.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(config.state_dir)
        accounts = Accounts(UserRepository(store), PasswordHasher(cost=config.password_cost))
        files = FileTree(config.files_dir)
        downloads = DownloadManager(
            DownloadRepository(store),
            fetch_policy(config),
            max_concurrent=config.max_concurrent_downloads,
            history_limit=config.download_history_limit,
        )
        # Transfers cut off by a crash are recorded as failed and their partial files removed.
        downloads.recover()
        transfers = Transfers(downloads, files, accounts, allowed=config.allow_download)
        return cls(
            config=config,
            store=store,
            accounts=accounts,
            files=files,
            downloads=downloads,
            transfers=transfers,
        )

    def close(self) -> None:
        self.downloads.shutdown(SHUTDOWN_GRACE_SECONDS)
        self.store.close()


def fetch_policy(config: Config) -> FetchPolicy:
    """The one policy every server-side fetch obeys, downloads and imports alike."""
    return FetchPolicy(
        allowed_domains=config.download_allowed_domains,
        blocked_domains=config.download_blocked_domains,
        allow_private_networks=config.allow_private_networks,
        max_size=config.max_download_size,
        timeout=config.download_timeout,
        **config.fetch_policy_overrides,
    )
