"""Builds the domain services one app instance uses, over one data directory."""

from __future__ import annotations

from dataclasses import dataclass

from ferry.accounts import Accounts, PasswordHasher
from ferry.config import Config
from ferry.files import FileTree
from storage.store import Store
from storage.users import UserRepository


@dataclass
class Services:
    config: Config
    store: Store
    accounts: Accounts
    files: FileTree

    @classmethod
    def open(cls, config: Config) -> Services:
        """Raises storage.store.DataDirLocked when another process owns the data directory."""
        config.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(config.state_dir)
        accounts = Accounts(UserRepository(store), PasswordHasher(cost=config.password_cost))
        return cls(config=config, store=store, accounts=accounts, files=FileTree(config.files_dir))

    def close(self) -> None:
        self.store.close()
