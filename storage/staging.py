"""Staging records of one import operation (Rocket.Chat's rocketchat_import_data).

A prepare can emit a million messages, so staging is not a TinyDB file (TinyDB
rewrites and holds the whole file). Each operation gets a directory

    <state_dir>/staging/<operation_id>/
        users.jsonl  channels.jsonl  messages.jsonl  contacts.jsonl
        warnings.jsonl                                  one record a line
        marks.jsonl      per-record errors found while importing (appended)
        manifest.json    counts and the byte length of every file above

Records are appended in batches. `manifest.json` is written atomically only when a
prepare finishes, and readers never read past the lengths it records. So a prepare
that died half-way has no manifest (detected by `is_complete`, removed by
`discard_incomplete`), and a torn append after a finished prepare (`import.addUsers`)
is invisible and truncated away by the next writer.

A record's sequence number is its line number within its type, starting at 0.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from ferry.kernel.rocketchat import DIRECT_MESSAGES_ID
from ferry.kernel.statuses import RoomType
from storage.store import Store, write_atomically

USER, CHANNEL, MESSAGE, CONTACT = "user", "channel", "message", "contact"
_KINDS = (USER, CHANNEL, MESSAGE, CONTACT)
_WARNING = "warning"
_FILES = {
    USER: "users.jsonl",
    CHANNEL: "channels.jsonl",
    MESSAGE: "messages.jsonl",
    CONTACT: "contacts.jsonl",
    _WARNING: "warnings.jsonl",
}
_MARKS = "marks.jsonl"
_MANIFEST = "manifest.json"

# Rocket.Chat names this entry with the i18n key its client translates.
DIRECT_MESSAGES_NAME = "Direct_Messages"

# Records kept in memory before one write; bounds a parser's memory, not its speed.
FLUSH_EVERY = 2000

_SAFE_OPERATION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class StagingIncomplete(LookupError):
    """No finished prepare exists for this operation (never run, crashed or deleted)."""


class StagingArea:
    """All operations' staging directories; thread-safe through `store.lock`."""

    def __init__(self, store: Store, *, flush_every: int = FLUSH_EVERY):
        """`flush_every`: records a writer buffers before it appends them to its files."""
        self._store = store
        self._root = store.state_dir / "staging"
        self._flush_every = flush_every

    # --- lifecycle -----------------------------------------------------------

    def writer(self, operation_id: str, *, append: bool = False) -> StagingWriter:
        """A sink for a prepare. Without `append`, earlier records of the operation are dropped."""
        directory = self._dir(operation_id)
        with self._store.lock:
            if not append:
                shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True, exist_ok=True)
            manifest = self._manifest(operation_id) if append else None
        return StagingWriter(
            directory, manifest, fsync=self._store.fsync, flush_every=self._flush_every
        )

    def is_complete(self, operation_id: str) -> bool:
        return self._manifest(operation_id) is not None

    def delete(self, operation_id: str) -> None:
        with self._store.lock:
            shutil.rmtree(self._dir(operation_id), ignore_errors=True)

    def discard_incomplete(self, keep: Collection[str] = ()) -> list[str]:
        """Remove every prepare that never finished (run at startup), but those of the
        operations in `keep` (which may still be running elsewhere); returns their ids."""
        discarded = []
        with self._store.lock:
            if not self._root.is_dir():
                return discarded
            for directory in self._root.iterdir():
                if (
                    directory.is_dir()
                    and directory.name not in keep
                    and not (directory / _MANIFEST).exists()
                ):
                    shutil.rmtree(directory, ignore_errors=True)
                    discarded.append(directory.name)
        return discarded

    def operations(self) -> list[str]:
        """Operations with a finished prepare."""
        if not self._root.is_dir():
            return []
        return sorted(d.name for d in self._root.iterdir() if (d / _MANIFEST).exists())

    # --- reading -------------------------------------------------------------

    def counts(self, operation_id: str) -> dict[str, int]:
        """`{"users", "channels", "messages", "contacts", "warnings"}` of a finished prepare."""
        counts = self._require(operation_id)["counts"]
        return {
            "users": counts[USER],
            "channels": counts[CHANNEL],
            "messages": counts[MESSAGE],
            # Prepares finished before contacts existed have none.
            "contacts": counts.get(CONTACT, 0),
            "warnings": counts[_WARNING],
        }

    def records(self, operation_id: str, kind: str) -> Iterator[tuple[int, dict]]:
        """`(sequence, record)` of one kind in the order the parser reported them.

        Streams from disk; safe to call while a converter writes elsewhere.
        """
        if kind not in _KINDS:
            raise ValueError(f"unknown staging record kind {kind!r}")
        return self._lines(operation_id, kind)

    def users(self, operation_id: str) -> Iterator[tuple[int, dict]]:
        return self.records(operation_id, USER)

    def channels(self, operation_id: str) -> Iterator[tuple[int, dict]]:
        return self.records(operation_id, CHANNEL)

    def messages(self, operation_id: str) -> Iterator[tuple[int, dict]]:
        return self.records(operation_id, MESSAGE)

    def contacts(self, operation_id: str) -> Iterator[tuple[int, dict]]:
        return self.records(operation_id, CONTACT)

    def warnings(self, operation_id: str, limit: int | None = None) -> list[str]:
        found = []
        for _, warning in self._lines(operation_id, _WARNING):
            if limit is not None and len(found) >= limit:
                break
            found.append(warning["message"])
        return found

    def selection(self, operation_id: str) -> dict[str, Any]:
        """The body of Rocket.Chat's getImportFileData, minus `name` and `success`.

        Reads users and channels only; the message count comes from the manifest.
        """
        manifest = self._require(operation_id)
        users = []
        for _, user in self._lines(operation_id, USER):
            import_ids = user.get("importIds") or [None]
            emails = user.get("emails") or [None]
            users.append(
                {
                    "user_id": import_ids[0],
                    "username": user.get("username"),
                    "email": emails[0],
                    "is_deleted": bool(user.get("deleted")),
                    "is_bot": user.get("type") == "bot",
                    "do_import": True,
                    "is_email_taken": False,
                }
            )
        channels = []
        any_direct = False
        for _, channel in self._lines(operation_id, CHANNEL):
            if channel.get("t") == RoomType.DIRECT:
                any_direct = True
                continue
            import_ids = channel.get("importIds") or [None]
            channels.append(
                {
                    "channel_id": import_ids[0],
                    "name": channel.get("name"),
                    "is_archived": bool(channel.get("archived")),
                    "do_import": True,
                    "is_private": channel.get("t") == RoomType.PRIVATE_GROUP,
                    "is_direct": False,
                }
            )
        if any_direct:
            channels.append(
                {
                    "channel_id": DIRECT_MESSAGES_ID,
                    "name": DIRECT_MESSAGES_NAME,
                    "is_archived": False,
                    "do_import": True,
                    "is_private": True,
                    "is_direct": True,
                }
            )
        contacts = [
            {
                "id": (contact.get("importIds") or [None])[0],
                "name": contact.get("name") or "",
                "emails": contact.get("emails") or [],
                "phones": contact.get("phones") or [],
                "do_import": True,
            }
            for _, contact in self._lines(operation_id, CONTACT)
        ]
        return {
            "users": users,
            "channels": channels,
            "contacts": contacts,
            "message_count": manifest["counts"][MESSAGE],
        }

    # --- per-record errors ---------------------------------------------------

    def mark_errors(self, operation_id: str, errors: Iterable[tuple[str, int, str]]) -> None:
        """Remember `(kind, sequence, error)` for records the importer could not convert."""
        lines = [orjson.dumps({"kind": k, "seq": s, "error": e}) + b"\n" for k, s, e in errors]
        if not lines:
            return
        self._require(operation_id)
        with self._store.lock, open(self._dir(operation_id) / _MARKS, "ab") as marks:
            marks.write(b"".join(lines))

    def errors(self, operation_id: str) -> Iterator[dict]:
        """`{"kind", "seq", "error"}` for every marked record, oldest first."""
        path = self._dir(operation_id) / _MARKS
        if not path.exists():
            return
        with open(path, "rb") as marks:
            for line in marks:
                # A crash can tear the last mark; the record simply stays unmarked.
                with contextlib.suppress(orjson.JSONDecodeError):
                    yield orjson.loads(line)

    # --- internals -----------------------------------------------------------

    def _dir(self, operation_id: str) -> Path:
        if not _SAFE_OPERATION_ID.match(operation_id or ""):
            raise ValueError(f"invalid operation id {operation_id!r}")
        return self._root / operation_id

    def _manifest(self, operation_id: str) -> dict | None:
        try:
            return orjson.loads((self._dir(operation_id) / _MANIFEST).read_bytes())
        except FileNotFoundError:
            return None

    def _require(self, operation_id: str) -> dict:
        manifest = self._manifest(operation_id)
        if manifest is None:
            raise StagingIncomplete(f"no finished prepare for operation {operation_id}")
        return manifest

    def _lines(self, operation_id: str, kind: str) -> Iterator[tuple[int, dict]]:
        manifest = self._require(operation_id)
        remaining = manifest["sizes"].get(kind, 0)
        if not remaining:
            return
        with open(self._dir(operation_id) / _FILES[kind], "rb", buffering=1 << 20) as records:
            for sequence, line in enumerate(records):
                remaining -= len(line)
                if remaining < 0:
                    break
                yield sequence, orjson.loads(line)
                if remaining == 0:
                    break


class StagingWriter:
    """RecordSink that appends a prepare's records in batches; `finish()` makes them visible.

    Use as a context manager: leaving with an exception discards what this writer
    added (a fresh prepare disappears, an append is rolled back).
    """

    def __init__(
        self,
        directory: Path,
        previous: dict | None,
        *,
        fsync: bool = True,
        flush_every: int = FLUSH_EVERY,
    ):
        self._dir = directory
        self._fsync = fsync
        self._flush_every = flush_every
        self._counts = dict.fromkeys(_FILES, 0)
        self._sizes = dict.fromkeys(_FILES, 0)
        if previous is not None:
            self._counts.update(previous["counts"])
            self._sizes.update(previous["sizes"])
        self._files = {}
        for kind, name in _FILES.items():
            handle = open(directory / name, "ab")  # noqa: SIM115 - closed in finish/abort
            # Bytes past the manifest are a torn earlier append; never let them resurface.
            handle.truncate(self._sizes[kind])
            self._files[kind] = handle
        self._buffers: dict[str, list[bytes]] = {kind: [] for kind in _FILES}
        self._buffered = 0
        self._closed = False

    # RecordSink ---------------------------------------------------------------

    def add_user(self, user: dict) -> None:
        self._add(USER, user)

    def add_channel(self, channel: dict) -> None:
        self._add(CHANNEL, channel)

    def add_message(self, message: dict) -> None:
        self._add(MESSAGE, message)

    def add_contact(self, contact: dict) -> None:
        self._add(CONTACT, contact)

    def warn(self, message: str) -> None:
        self._add(_WARNING, {"message": str(message)})

    # --------------------------------------------------------------------------

    @property
    def counts(self) -> dict[str, int]:
        return {
            "users": self._counts[USER],
            "channels": self._counts[CHANNEL],
            "messages": self._counts[MESSAGE],
            "contacts": self._counts[CONTACT],
            "warnings": self._counts[_WARNING],
        }

    def finish(self) -> dict[str, int]:
        """Flush, sync and publish the records; returns the counts."""
        self._flush()
        for handle in self._files.values():
            handle.flush()
            if self._fsync:
                os.fsync(handle.fileno())
            handle.close()
        manifest = {"complete": True, "counts": self._counts, "sizes": self._sizes}
        write_atomically(self._dir / _MANIFEST, orjson.dumps(manifest), fsync=self._fsync)
        self._closed = True
        return self.counts

    def abort(self) -> None:
        """Forget what this writer added; the previous manifest (if any) still holds."""
        if self._closed:
            return
        for handle in self._files.values():
            handle.close()
        self._closed = True
        if not (self._dir / _MANIFEST).exists():
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> StagingWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            if not self._closed:
                self.finish()
        else:
            self.abort()

    def _add(self, kind: str, record: dict) -> None:
        if self._closed:
            raise RuntimeError("staging writer is closed")
        try:
            line = orjson.dumps(record) + b"\n"
        except TypeError as error:
            raise ValueError(f"staging {kind} record is not JSON: {error}") from None
        self._buffers[kind].append(line)
        self._counts[kind] += 1
        self._buffered += 1
        if self._buffered >= self._flush_every:
            self._flush()

    def _flush(self) -> None:
        for kind, lines in self._buffers.items():
            if lines:
                data = b"".join(lines)
                self._files[kind].write(data)
                # Hand each batch to the OS so a parser's memory never holds more than one.
                self._files[kind].flush()
                self._sizes[kind] += len(data)
                lines.clear()
        self._buffered = 0
