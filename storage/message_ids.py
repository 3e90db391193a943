"""Where each message lives: its room and `_sort`, found from its `_id` alone.

    <root>/ids/<nnn>.jsonl  one line `[_id, room _id, _sort]` per message written, in
                            BUCKETS files chosen by a hash of the `_id`
    <root>/ids/ready        present once every stored message has its line
    <root>/ids/unsynced     present while lines may sit unsynced in the page cache

A lookup reads one bucket (about 1/BUCKETS of all lines) and then one shard. Lines
are only ever appended, before the shards they describe are written, and checked
against the shards when read: a stale line (a message that moved, a room deleted)
costs a look, never a wrong answer. Syncing every bucket a batch touches would cost
hundreds of fsyncs per import batch, so lines are synced when the store closes; a
process that stopped without closing leaves `unsynced`, and the next one starts the
index over, which the first lookup rebuilds from the shards (as it does for a
workspace written before this index existed). MessageIds is not locked by itself:
its owner calls it with the store's lock held.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import orjson

from ferry.kernel.durable import fsync_directory

BUCKETS = 256


def _bucket(message_id: str) -> str:
    digest = hashlib.blake2b(message_id.encode("utf-8", "surrogatepass"), digest_size=2)
    return f"{int.from_bytes(digest.digest(), 'big') % BUCKETS:03d}.jsonl"


class MessageIds:
    def __init__(self, root: Path, fsync: bool):
        self._dir = root / "ids"
        self._fsync = fsync
        self._dir.mkdir(parents=True, exist_ok=True)
        self._touched: set[str] = set()
        if (self._dir / "unsynced").exists():
            self.clear()
            (self._dir / "unsynced").unlink()

    def clear(self) -> None:
        """Forget every line; the index is not ready until rebuilt."""
        (self._dir / "ready").unlink(missing_ok=True)
        for bucket in self._dir.glob("*.jsonl"):
            bucket.unlink()

    @property
    def ready(self) -> bool:
        return (self._dir / "ready").exists()

    def mark_ready(self) -> None:
        (self._dir / "ready").touch()

    def add(self, entries: Iterable[tuple[str, str, int]]) -> None:
        """Append `(message _id, room _id, _sort)` lines, one write per bucket touched.

        Each write starts with a newline, so a line a crash cut short stays on its own."""
        lines: dict[str, list[bytes]] = defaultdict(lambda: [b"\n"])
        for message_id, room_id, sort in entries:
            lines[_bucket(message_id)].append(orjson.dumps([message_id, room_id, sort]) + b"\n")
        if lines and self._fsync and not self._touched:
            (self._dir / "unsynced").touch()
            fsync_directory(self._dir)
        for name, chunk in lines.items():
            fd = os.open(self._dir / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, b"".join(chunk))
            finally:
                os.close(fd)
        self._touched.update(lines)

    def close(self) -> None:
        """Sync the buckets written since opening, then drop the `unsynced` mark."""
        if not self._touched or not self._fsync:
            return
        for name in self._touched:
            fd = os.open(self._dir / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        (self._dir / "unsynced").unlink(missing_ok=True)
        fsync_directory(self._dir)
        self._touched.clear()

    def places(self, message_id: str) -> list[tuple[str, int]]:
        """Every `(room _id, _sort)` recorded for the message, most recent first."""
        try:
            data = (self._dir / _bucket(message_id)).read_bytes()
        except FileNotFoundError:
            return []
        needle = orjson.dumps(message_id)
        found = []
        for line in data.splitlines():
            if line and needle in line:
                try:
                    entry_id, room_id, sort = orjson.loads(line)
                except (orjson.JSONDecodeError, ValueError):
                    continue  # a line cut short by a crash
                if entry_id == message_id:
                    found.append((room_id, sort))
        found.reverse()
        return list(dict.fromkeys(found))
