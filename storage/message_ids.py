"""Where each message lives: its room and `_sort`, found from its `_id` alone.

    <root>/ids/<nn>.jsonl   one line `[_id, room _id, _sort]` per message written, in
                            BUCKETS files chosen by a hash of the `_id`
    <root>/ids/ready        present once every stored message has its line

A lookup reads one bucket (about 1/BUCKETS of all lines) and then one shard. Lines
are only ever appended, before the shards they describe are written: a crash leaves
a line for a message that was never stored, never a stored message without a line.
A message that moved (its `_sort` changed) or a room that was deleted leaves stale
lines behind; the caller checks each candidate against the shards, newest first.

An installation written before this index existed has no `ready`: the first lookup
builds the index from the shards. MessageIds is not locked by itself: its owner calls
it with the store's lock held.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import orjson

BUCKETS = 256


def _bucket(message_id: str) -> str:
    digest = hashlib.blake2b(message_id.encode("utf-8", "surrogatepass"), digest_size=2)
    return f"{int.from_bytes(digest.digest(), 'big') % BUCKETS:03d}.jsonl"


class MessageIds:
    def __init__(self, root: Path, fsync: bool):
        self._dir = root / "ids"
        self._fsync = fsync
        self._dir.mkdir(parents=True, exist_ok=True)

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
        for name, chunk in lines.items():
            fd = os.open(self._dir / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, b"".join(chunk))
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)

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
