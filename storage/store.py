"""The one owner of Ferry's TinyDB files: a lock, atomic writes, and copies out."""

from __future__ import annotations

import contextlib
import copy
import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table


class DataDirLocked(RuntimeError):
    """Another Ferry process already owns this data directory."""


def write_atomically(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if fsync:
        # The rename is durable only once the directory entry is on disk too.
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class AtomicCachedStorage(Storage):
    """TinyDB storage that keeps the parsed file in memory and writes through atomically.

    TinyDB's own JSONStorage rewrites the file in place, so a kill between write and
    truncate corrupts it; CachingMiddleware delays writes, so a kill loses them. This
    storage does neither: every write is a temp file, fsync and rename.

    With `group_commit`, `write` only changes the copy in memory and `commit` makes it
    durable: the disk write and fsync then happen outside the store's lock (readers do
    not wait for the disk), and writers that commit at the same time share one write.
    """

    def __init__(self, path: str | Path, fsync: bool = True, group_commit: bool = False):
        self.path = Path(path)
        self.fsync = fsync
        self.group_commit = group_commit
        self._cache: dict | None = None
        # Changes made in memory, and how many of them are on disk.
        self.generation = 0
        self._durable = 0
        self._commit_lock = threading.Lock()

    def read(self) -> dict | None:
        if self._cache is None:
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                return None
            self._cache = orjson.loads(raw) if raw else None
        return self._cache

    def write(self, data: dict) -> None:
        if self.group_commit:
            self._cache = data
            self.generation += 1
            return
        write_atomically(self.path, orjson.dumps(data), fsync=self.fsync)
        self._cache = data

    def commit(self, store_lock: threading.RLock) -> int:
        """Make every change made so far durable; returns the generation now on disk.

        Call without holding `store_lock`: the file is encoded under it, written after.
        """
        with store_lock:
            wanted = self.generation
        with self._commit_lock:
            if self._durable < wanted:
                with store_lock:
                    generation, data = self.generation, orjson.dumps(self._cache)
                write_atomically(self.path, data, fsync=self.fsync)
                self._durable = generation
            return self._durable

    def close(self) -> None:
        self._cache = None


class KeyedTable(Table):
    """A table whose document ids are our own string ids, so lookups by id are O(1)."""

    document_id_class = str

    def _get_next_id(self):  # pragma: no cover - every insert in Ferry names its id
        raise TypeError("Ferry tables need an explicit string id on insert")


class _FerryTinyDB(TinyDB):
    table_class = KeyedTable


class Store:
    """Owns the data directory's databases; every access goes through `lock`.

    Repositories (users, downloads, imports, ...) live beside this module and call
    `db(name)` only while holding `lock`. Nothing outside `storage/` imports tinydb.
    """

    def __init__(self, state_dir: Path, *, fsync: bool = True):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.lock = threading.RLock()
        self._dbs: dict[str, TinyDB] = {}
        self._lock_file = self._claim(self.state_dir / ".lock")
        self._remove_temporaries()

    def _remove_temporaries(self) -> None:
        """Delete the temp files of atomic writes a killed process left behind.

        Only the owner of the lock writes here, so every `.<name>.<random>.tmp` found now
        belongs to a write that never reached its rename.
        """
        for directory, _, names in os.walk(self.state_dir):
            for name in names:
                if name.startswith(".") and name.endswith(".tmp"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(directory, name))

    @staticmethod
    def _claim(lock_path: Path):
        handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the process's life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise DataDirLocked(
                f"another ferry process is already using {lock_path.parent.parent}; "
                "stop it first or choose another --data-dir"
            ) from None
        return handle

    def db(self, name: str, *, group_commit: bool = False) -> TinyDB:
        """The TinyDB file `<name>.json`, opened once. Call with `lock` held.

        `group_commit` (fixed by the first call) defers writes to `commit(name)`.
        """
        database = self._dbs.get(name)
        if database is None:
            storage_path = self.state_dir / f"{name}.json"
            database = _FerryTinyDB(
                str(storage_path),
                storage=AtomicCachedStorage,
                fsync=self.fsync,
                group_commit=group_commit,
            )
            self._dbs[name] = database
        return database

    def generation(self, name: str) -> int:
        """How many changes `<name>.json` has had in memory. Call with `lock` held."""
        return self._dbs[name].storage.generation

    def commit(self, name: str) -> int:
        """Write a group-commit database's changes durably; call without `lock` held.

        Returns the generation now on disk: every change up to it survives a crash.
        """
        with self.lock:
            storage = self._dbs[name].storage
        return storage.commit(self.lock)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            yield

    def close(self) -> None:
        # Every save commits before it returns; this catches one whose commit failed.
        for name, database in list(self._dbs.items()):
            if database.storage.group_commit:
                with contextlib.suppress(OSError):
                    self.commit(name)
        with self.lock:
            for database in self._dbs.values():
                database.close()
            self._dbs.clear()
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None


def detached(document: Any) -> Any:
    """A deep copy of a stored document, so callers can never mutate the cache."""
    if document is None:
        return None
    return copy.deepcopy(dict(document))
