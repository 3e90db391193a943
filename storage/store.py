"""The one owner of Ferry's TinyDB files: a lock, atomic writes, and copies out."""

from __future__ import annotations

import contextlib
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

from storage.tinydb_overrides import FerryTinyDB


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


def append_durably(fd: int, data: bytes, offset: int, *, fsync: bool = True) -> None:
    """Write `data` at `offset` (the end of an append-only file) and make it durable."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
    if fsync:
        os.fdatasync(fd)


# The journal is folded into the main file once it outgrows both this and the main file,
# so reading it back at start-up never costs more than reading the main file twice.
JOURNAL_COMPACT_MIN_BYTES = 256 * 1024
# The main file's top-level key holding the sequence number of its newest journal entry.
_SEQUENCE_KEY = "_journal_sequence"


class AtomicCachedStorage(Storage):
    """TinyDB storage that keeps the parsed file in memory and writes through atomically.

    TinyDB's own JSONStorage rewrites the file in place, so a kill between write and
    truncate corrupts it; CachingMiddleware delays writes, so a kill loses them. This
    storage does neither: every write is a temp file, fsync and rename.

    With `group_commit`, `write` only changes the copy in memory and `commit` makes it
    durable: the disk write and fsync then happen outside the store's lock (readers do
    not wait for the disk), and writers that commit at the same time share one write.
    A commit appends just the changed documents to `<name>.journal` (one JSON line each,
    numbered) instead of rewriting the whole file, whose cost grows with every record
    kept; the journal is folded into the main file when it grows large. A line cut short
    by a crash was never acknowledged and is dropped on reading; lines numbered at or
    below the main file's sequence are already in it (a crash between folding and
    truncating the journal leaves such lines behind).
    """

    def __init__(
        self,
        path: str | Path,
        fsync: bool = True,
        group_commit: bool = False,
        journal_compact_min_bytes: int = JOURNAL_COMPACT_MIN_BYTES,
    ):
        self.path = Path(path)
        self.fsync = fsync
        self.group_commit = group_commit
        self.journal_compact_min_bytes = journal_compact_min_bytes
        self.journal_path = self.path.with_suffix(".journal")
        self._cache: dict | None = None
        # Changes made in memory, and how many of them are on disk.
        self.generation = 0
        self._durable = 0
        self._commit_lock = threading.Lock()
        # What the journal must record at the next commit: table -> changed document ids
        # (None: the whole table). `_snapshot_due` asks for the whole file instead, after
        # a change the tables did not describe or a journal write that failed.
        self._changed: dict[str, set[str] | None] = {}
        self._undescribed_write = False
        self._snapshot_due = False
        self._sequence = 0
        self._journal_fd: int | None = None
        self._journal_bytes = 0
        self._file_bytes = 0

    def read(self) -> dict | None:
        if self._cache is None:
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                raw = b""
            self._file_bytes = len(raw)
            data = orjson.loads(raw) if raw else None
            if self.group_commit:
                data = self._replay_journal(data)
            self._cache = data
        return self._cache

    def _replay_journal(self, data: dict | None) -> dict | None:
        data = dict(data or {})
        self._sequence = data.pop(_SEQUENCE_KEY, 0)
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            raw = b""
        complete = raw[: raw.rfind(b"\n") + 1]
        for line in complete.splitlines():
            try:
                entry = orjson.loads(line)
                sequence, table_name, doc_id = entry["seq"], entry["table"], entry["id"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # not a line this storage wrote whole: nothing to apply
            if not isinstance(sequence, int) or sequence <= self._sequence:
                continue
            table = data.setdefault(table_name, {})
            if "doc" in entry:
                table[doc_id] = entry["doc"]
            else:
                table.pop(doc_id, None)
            self._sequence = sequence
        if self._journal_fd is None:
            # An empty database is read from disk again on every read (TinyDB's storage
            # answers None for it): the journal stays open once, not once per read.
            self._journal_fd = os.open(
                self.journal_path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644
            )
        if len(complete) < len(raw):
            # The tail a crash cut short goes, so that new lines start on a line of their own.
            os.ftruncate(self._journal_fd, len(complete))
        self._journal_bytes = len(complete)
        return data or None

    def write(self, data: dict) -> None:
        if self.group_commit:
            self._cache = data
            self.generation += 1
            if self._undescribed_write:
                self._snapshot_due = True
            self._undescribed_write = True
            return
        try:
            write_atomically(self.path, orjson.dumps(data), fsync=self.fsync)
        except BaseException:
            # TinyDB changed the cached tables in place before calling this: forget them,
            # so that the next read comes from the file, which holds the last durable
            # state (a full disk must not leave a change in memory that was never saved).
            self._cache = None
            raise
        self._cache = data

    def changed(self, table: str, doc_ids: list[str] | None) -> None:
        """The write just made changed these documents of `table` (None: any of them)."""
        if not self.group_commit:
            return
        self._undescribed_write = False
        if doc_ids is None:
            self._changed[table] = None
        elif (known := self._changed.setdefault(table, set())) is not None:
            known.update(doc_ids)

    def commit(self, store_lock: threading.RLock) -> int:
        """Make every change made so far durable; returns the generation now on disk.

        Call without holding `store_lock`: the changes are encoded under it, written after.
        """
        with store_lock:
            wanted = self.generation
        with self._commit_lock:
            if self._durable < wanted:
                with store_lock:
                    generation = self.generation
                    changed, self._changed = self._changed, {}
                    lines = self._journal_lines(changed)
                    if lines is None:
                        snapshot = orjson.dumps(
                            {**(self._cache or {}), _SEQUENCE_KEY: self._sequence}
                        )
                try:
                    if lines is None:
                        self._write_snapshot(snapshot)
                    elif lines:
                        append_durably(
                            self._journal_fd, lines, self._journal_bytes, fsync=self.fsync
                        )
                        self._journal_bytes += len(lines)
                except BaseException:
                    with store_lock:
                        # The next commit writes the whole file: it also drops any
                        # half-written line this attempt may have left in the journal.
                        self._snapshot_due = True
                    raise
                self._durable = generation
            return self._durable

    def _journal_lines(self, changed: dict[str, set[str] | None]) -> bytes | None:
        """The journal lines for `changed`, or None when the whole file is to be written."""
        if (
            self._snapshot_due
            or self._undescribed_write
            or self._journal_fd is None
            or None in changed.values()
            or self._journal_bytes > max(self.journal_compact_min_bytes, self._file_bytes)
        ):
            self._snapshot_due = self._undescribed_write = False
            return None
        cache = self._cache or {}
        lines = []
        for table, doc_ids in changed.items():
            documents = cache.get(table) or {}
            for doc_id in sorted(doc_ids):
                self._sequence += 1
                entry = {"seq": self._sequence, "table": table, "id": doc_id}
                if doc_id in documents:
                    entry["doc"] = documents[doc_id]
                lines.append(orjson.dumps(entry))
        return b"\n".join(lines) + b"\n" if lines else b""

    def _write_snapshot(self, snapshot: bytes) -> None:
        write_atomically(self.path, snapshot, fsync=self.fsync)
        self._file_bytes = len(snapshot)
        if self._journal_fd is not None:
            # Safe to lose to a crash: what the journal holds is in the file now.
            os.ftruncate(self._journal_fd, 0)
            if self.fsync:
                os.fsync(self._journal_fd)
            self._journal_bytes = 0

    def close(self) -> None:
        self._cache = None
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None


class Store:
    """Owns the data directory's databases; every access goes through `lock`.

    Repositories (users, downloads, imports, ...) live beside this module and call
    `db(name)` only while holding `lock`. Nothing outside `storage/` imports tinydb.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        fsync: bool = True,
        journal_compact_min_bytes: int = JOURNAL_COMPACT_MIN_BYTES,
    ):
        """`journal_compact_min_bytes`: a journal is folded into its main file once it
        outgrows both this and the main file."""
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.journal_compact_min_bytes = journal_compact_min_bytes
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
            database = FerryTinyDB(
                str(storage_path),
                storage=AtomicCachedStorage,
                fsync=self.fsync,
                group_commit=group_commit,
                journal_compact_min_bytes=self.journal_compact_min_bytes,
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


def detached(documents: Any) -> Any:
    """A deep copy of a stored document (or a list of them), so callers can never mutate
    the cache.

    Documents are JSON (that is how they are stored), and a JSON round trip copies one
    about six times faster than deepcopy, on paths taken for every download.
    """
    if documents is None:
        return None
    return orjson.loads(orjson.dumps(documents))
