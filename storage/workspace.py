"""Rooms and messages of the imported workspace.

TinyDB holds a whole file in memory and rewrites it on every write, which is fine for
rooms (thousands, written in batches) and hopeless for a million messages. So:

    <state_dir>/workspace.json                TinyDB, table "rooms" keyed by room _id
    <state_dir>/workspace/pending.json        {room _id: messages waiting for a file download}
    <state_dir>/workspace/rooms/<rid>/index.json    the room's shards, oldest first
    <state_dir>/workspace/rooms/<rid>/<n>.json      one shard: messages sorted by `_sort`
    <state_dir>/workspace/rooms/<rid>/members.json  member user ids

A shard holds at most SHARD_MAX messages ordered by the key (`_sort`, `_id`), where
`_sort` is the message time in integer microseconds (Slack orders by microsecond
`ts`; the ISO `ts` carries only milliseconds). The index lists each shard's first and
last key and its counts, so a history page reads one or two shards however big the
room is, and totals come from the counts.

Writes never modify a shard file in place: changed shards are written under new
names, then the index is replaced atomically, then the old files are removed. A crash
leaves the old index pointing at old, intact files; strays are removed when the room
is next written.

Every message must carry `_sort`. Documents returned by read methods are copies.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import os
import re
import shutil
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from tinydb.table import Document

from storage.store import Store, detached, write_atomically

SHARD_MAX = 1000
# Decoded shards kept for repeated reads of the newest pages.
_SHARD_CACHE = 24
# Rooms whose `_id -> _sort` map stays loaded while an import writes them.
_ID_MAPS = 8
_INDEX_CACHE = 512

# Room fields the in-memory lookups and orderings depend on.
_INDEXED_FIELDS = frozenset({"name", "importIds", "uids", "usernames", "t"})

_SAFE_DIR = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


def is_pending_file(message: dict) -> bool:
    """Rocket.Chat's pending-file test (countAllImportedMessagesWithFilesToDownload)."""
    file = message.get("_importFile")
    return bool(
        file
        and file.get("downloadUrl")
        and not file.get("rocketChatUrl")
        and not file.get("downloaded")
        and not file.get("external")
    )


def _visible(message: dict) -> bool:
    return not message.get("_hidden")


def _main_visible(message: dict) -> bool:
    # Thread replies show in the room only when broadcast (tshow), as in Rocket.Chat.
    return not message.get("_hidden") and (not message.get("tmid") or bool(message.get("tshow")))


def _key(message: dict) -> tuple[int, str]:
    return message["_sort"], message["_id"]


def _copy(documents: Any) -> Any:
    return orjson.loads(orjson.dumps(documents))


def _shard_meta(name: str, messages: list[dict]) -> dict:
    visible = main = pending = 0
    for message in messages:
        if not message.get("_hidden"):
            visible += 1
            if not message.get("tmid") or message.get("tshow"):
                main += 1
        if "_importFile" in message and is_pending_file(message):
            pending += 1
    return {
        "f": name,
        "lo": list(_key(messages[0])),
        "hi": list(_key(messages[-1])),
        "n": len(messages),
        "nv": visible,
        "nm": main,
        "np": pending,
    }


class WorkspaceStore:
    """Rooms (TinyDB) and their sharded messages; every method takes `store.lock`."""

    def __init__(self, store: Store):
        self._store = store
        self._root = store.state_dir / "workspace"
        (self._root / "rooms").mkdir(parents=True, exist_ok=True)
        # Encoded, not decoded: bytes cost the garbage collector nothing, while a cache
        # of decoded shards made it scan ~100k dicts per collection (half the import time).
        self._shards: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._indexes: OrderedDict[str, dict] = OrderedDict()
        self._id_maps: OrderedDict[str, dict[int, int]] = OrderedDict()
        self._file_index: dict[str, list[tuple[str, int, str]]] | None = None
        self._pending = self._read_json(self._root / "pending.json", {})
        self._by_name: dict[str, str] = {}
        self._by_import_id: dict[str, str] = {}
        self._by_members: dict[str, str] = {}
        self._ordered: dict[str, list[str]] | None = None
        with store.lock:
            for room in self._rooms.all():
                self._index_room(room)

    # ======================================================================
    # rooms
    # ======================================================================

    @property
    def _rooms(self):
        return self._store.db("workspace").table("rooms")

    @staticmethod
    def members_key(user_ids: Iterable[str]) -> str:
        return ",".join(sorted(set(user_ids)))

    def _index_room(self, room: dict) -> None:
        if room.get("name"):
            self._by_name.setdefault(room["name"], room["_id"])
        for import_id in room.get("importIds") or []:
            self._by_import_id.setdefault(import_id, room["_id"])
        if room.get("t") == "d" and room.get("uids"):
            self._by_members.setdefault(self.members_key(room["uids"]), room["_id"])

    def _unindex_room(self, room_id: str) -> None:
        for index in (self._by_name, self._by_import_id, self._by_members):
            for key in [k for k, v in index.items() if v == room_id]:
                del index[key]

    def insert_rooms(self, rooms: Iterable[dict]) -> None:
        """Insert new rooms in one write; each needs a unique `_id` and `t`."""
        rooms = list(rooms)
        if not rooms:
            return
        with self._store.lock:
            self._rooms.insert_multiple(Document(dict(r), doc_id=r["_id"]) for r in rooms)
            for room in rooms:
                self._index_room(room)
            self._ordered = None

    def update_rooms(self, changes: dict[str, dict]) -> None:
        """Apply `{room_id: top-level fields}` in one write; unknown rooms are ignored."""
        with self._store.lock:
            known = [rid for rid in changes if self._rooms.contains(doc_id=rid)]
            if not known:
                return
            self._rooms.update(lambda doc: doc.update(changes[doc["_id"]]), doc_ids=known)
            for rid in known:
                if _INDEXED_FIELDS & changes[rid].keys():
                    self._unindex_room(rid)
                    self._index_room(self._rooms.get(doc_id=rid))
                    self._ordered = None

    def room(self, room_id: str) -> dict | None:
        with self._store.lock:
            return detached(self._rooms.get(doc_id=room_id))

    def _room_via(self, index: dict[str, str], key: str) -> dict | None:
        with self._store.lock:
            room_id = index.get(key)
            return self.room(room_id) if room_id else None

    def room_by_name(self, name: str) -> dict | None:
        return self._room_via(self._by_name, name)

    def room_by_import_id(self, import_id: str) -> dict | None:
        return self._room_via(self._by_import_id, import_id)

    def direct_room_by_members(self, user_ids: Iterable[str]) -> dict | None:
        return self._room_via(self._by_members, self.members_key(user_ids))

    def rooms(
        self,
        room_type: str | None,
        offset: int = 0,
        count: int | None = None,
    ) -> tuple[list[dict], int]:
        """Rooms of one type (`c`, `p`, `d`; None for all) by name then id; `(page, total)`."""
        with self._store.lock:
            if self._ordered is None:
                ordered: dict[str, list[str]] = defaultdict(list)
                every = sorted(
                    self._rooms.all(),
                    key=lambda r: (r.get("name") or ",".join(r.get("usernames") or []), r["_id"]),
                )
                for room in every:
                    ordered[room["t"]].append(room["_id"])
                    ordered[""].append(room["_id"])
                self._ordered = dict(ordered)
            ids = self._ordered.get(room_type or "", [])
            end = None if count is None else offset + count
            return [self.room(rid) for rid in ids[offset:end]], len(ids)

    def room_count(self) -> int:
        with self._store.lock:
            return len(self._rooms)

    def members(self, room_id: str) -> list[str]:
        with self._store.lock:
            return self._read_json(self._room_dir(room_id) / "members.json", [])

    def set_members(self, room_id: str, user_ids: Iterable[str]) -> None:
        with self._store.lock:
            directory = self._room_dir(room_id)
            directory.mkdir(parents=True, exist_ok=True)
            write_atomically(
                directory / "members.json",
                orjson.dumps(sorted(set(user_ids))),
                fsync=self._store.fsync,
            )

    # ======================================================================
    # messages: writing
    # ======================================================================

    def upsert_messages(self, messages: Iterable[dict]) -> int:
        """Insert or replace messages by `_id`; returns how many were written."""
        by_room: dict[str, list[dict]] = defaultdict(list)
        for message in messages:
            if not isinstance(message.get("_sort"), int):
                raise ValueError(f"message {message.get('_id')!r} has no integer _sort")
            by_room[message["rid"]].append(message)
        written = 0
        with self._store.lock:
            for room_id, batch in by_room.items():
                written += self._upsert_room(room_id, batch)
        return written

    def writer(self, per_room: int = 5000, in_total: int = 50_000) -> MessageWriter:
        """A buffer that groups messages by room and writes them in large batches."""
        return MessageWriter(self, per_room, in_total)

    def _upsert_room(self, room_id: str, incoming: list[dict]) -> int:
        unique = {m["_id"]: m for m in incoming}
        batch = sorted(unique.values(), key=_key)
        index = self._index(room_id)
        shards = index["shards"]
        ids = self._id_map(room_id, index)
        starts = [tuple(s["lo"]) for s in shards]

        def locate(key: tuple[int, str]) -> int:
            return max(bisect.bisect_right(starts, key) - 1, 0)

        # Per shard position: messages to add, and ids to drop (moved elsewhere or replaced).
        adds: dict[int, list[dict]] = defaultdict(list)
        drops: dict[int, set[str]] = defaultdict(set)
        for message in batch:
            position = locate(_key(message))
            if (
                position == len(shards) - 1
                and shards[-1]["n"] >= SHARD_MAX
                and _key(message) > tuple(shards[-1]["hi"])
            ):
                # Appending after a full shard starts a new one instead of rewriting it.
                position = len(shards)
            adds[position].append(message)
            drops[position].add(message["_id"])
            old = ids.get(hash(message["_id"]))
            if old is not None and old != message["_sort"] and shards:
                drops[locate((old, message["_id"]))].add(message["_id"])

        replaced: dict[int, list[dict]] = {}
        for position in sorted(set(adds) | set(drops)):
            current = self._shard(room_id, shards[position]) if position < len(shards) else []
            dropped = drops.get(position, ())
            kept = [m for m in current if m["_id"] not in dropped] if dropped else current
            added = adds.get(position, [])
            if kept and added and _key(added[0]) < _key(kept[-1]):
                merged = sorted(kept + added, key=_key)
            else:
                merged = kept + added
            replaced[position] = merged
        self._replace_shards(room_id, index, replaced)
        for message in batch:
            ids[hash(message["_id"])] = message["_sort"]
        if any(is_pending_file(m) for m in batch):
            self._file_index = None
        return len(batch)

    def _replace_shards(self, room_id: str, index: dict, replaced: dict[int, list[dict]]) -> None:
        """Swap the shards at the given positions for new contents (split or dropped as needed)."""
        directory = self._room_dir(room_id)
        directory.mkdir(parents=True, exist_ok=True)
        shards = index["shards"]
        new_shards: list[dict] = []
        obsolete: list[str] = []
        written: list[tuple[str, list[dict]]] = []
        for position in range(max(len(shards), max(replaced, default=0) + 1)):
            if position not in replaced:
                new_shards.append(shards[position])
                continue
            if position < len(shards):
                obsolete.append(shards[position]["f"])
            messages = replaced[position]
            for start in range(0, len(messages), SHARD_MAX):
                chunk = messages[start : start + SHARD_MAX]
                name = f"{index['seq']}.json"
                index["seq"] += 1
                encoded = orjson.dumps(chunk)
                write_atomically(directory / name, encoded, fsync=self._store.fsync)
                new_shards.append(_shard_meta(name, chunk))
                written.append((name, encoded))
        index["shards"] = new_shards
        write_atomically(directory / "index.json", orjson.dumps(index), fsync=self._store.fsync)
        for name in obsolete:
            self._shards.pop((room_id, name), None)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / name)
        for name, encoded in written:
            self._remember_shard(room_id, name, encoded)
        self._set_pending(room_id, sum(s["np"] for s in new_shards))

    # ======================================================================
    # messages: reading
    # ======================================================================

    def history(
        self,
        room_id: str,
        *,
        since: int | None = None,
        before: int | None = None,
        offset: int = 0,
        count: int = 20,
        thread_messages: bool = True,
    ) -> tuple[list[dict], int]:
        """Visible messages newest first, with `since <= _sort < before`; `(page, total)`.

        `thread_messages=False` hides thread replies not broadcast to the room, as
        Rocket.Chat's REST history does by default. Hidden messages never show.
        """
        wanted, counter = (_visible, "nv") if thread_messages else (_main_visible, "nm")
        page: list[dict] = []
        total = 0
        skip = max(offset, 0)
        with self._store.lock:
            for shard in reversed(self._index(room_id)["shards"]):
                if before is not None and shard["lo"][0] >= before:
                    continue
                if since is not None and shard["hi"][0] < since:
                    break
                inside = (before is None or shard["hi"][0] < before) and (
                    since is None or shard["lo"][0] >= since
                )
                if inside and (len(page) >= count or skip >= shard[counter]):
                    total += shard[counter]
                    if len(page) < count:
                        skip -= shard[counter]
                    continue
                for message in reversed(self._shard(room_id, shard)):
                    if before is not None and message["_sort"] >= before:
                        continue
                    if since is not None and message["_sort"] < since:
                        break
                    if not wanted(message):
                        continue
                    total += 1
                    if skip:
                        skip -= 1
                    elif len(page) < count:
                        page.append(message)
            return page, total

    def message_count(self, room_id: str, *, visible_only: bool = True) -> int:
        with self._store.lock:
            field = "nv" if visible_only else "n"
            return sum(s[field] for s in self._index(room_id)["shards"])

    def last_message(self, room_id: str) -> dict | None:
        """The newest message a room list shows as `lastMessage` (visible, not a thread reply)."""
        with self._store.lock:
            for shard in reversed(self._index(room_id)["shards"]):
                if shard["nm"]:
                    for message in reversed(self._shard(room_id, shard)):
                        if _main_visible(message):
                            return message
            return None

    def messages(self, room_id: str, *, pending_files_only: bool = False) -> Iterator[dict]:
        """Every stored message of a room, oldest first (hidden ones included).

        Reads one shard per lock hold, so imports and readers interleave; a shard
        rewritten meanwhile is picked up from the new index after the last key seen.
        """
        after: tuple[int, str] | None = None
        while True:
            with self._store.lock:
                shard = next(
                    (
                        s
                        for s in self._index(room_id)["shards"]
                        if after is None or tuple(s["hi"]) > after
                    ),
                    None,
                )
                if shard is None:
                    return
                if pending_files_only and not shard["np"]:
                    after = tuple(shard["hi"])
                    continue
                chunk = [
                    m
                    for m in self._read_shard(room_id, shard["f"])
                    if after is None or _key(m) > after
                ]
            after = tuple(shard["hi"])
            for message in chunk:
                if not pending_files_only or is_pending_file(message):
                    yield message

    # ======================================================================
    # pending files (Rocket.Chat's pending-files importer)
    # ======================================================================

    def pending_file_count(self) -> int:
        with self._store.lock:
            return sum(self._pending.values())

    def pending_file_messages(self, room_id: str | None = None) -> Iterator[dict]:
        """Messages whose `_importFile` still waits for a download, room by room."""
        with self._store.lock:
            rooms = [room_id] if room_id else [r for r, n in self._pending.items() if n]
        for rid in rooms:
            yield from self.messages(rid, pending_files_only=True)

    def mark_files_downloaded(self, downloads: Iterable[tuple[str, str, dict | None]]) -> int:
        """For each `(file_id, url, attachment)`: every pending message with that
        `_importFile.id` gets `rocketChatUrl=url`, `downloaded=True` and the attachment
        added (once). Returns how many messages changed."""
        downloads = list(downloads)
        changed = 0
        with self._store.lock:
            where = self._files()
            per_shard: dict[str, dict[int, dict[str, tuple[str, dict | None]]]] = defaultdict(
                lambda: defaultdict(dict)
            )
            for file_id, url, attachment in downloads:
                for rid, sort, mid in where.pop(file_id, ()):
                    index = self._index(rid)
                    starts = [tuple(s["lo"]) for s in index["shards"]]
                    position = max(bisect.bisect_right(starts, (sort, mid)) - 1, 0)
                    per_shard[rid][position][mid] = (url, attachment)
            for rid, positions in per_shard.items():
                index = self._index(rid)
                replaced = {}
                for position, updates in positions.items():
                    messages = self._shard(rid, index["shards"][position])
                    for i, message in enumerate(messages):
                        if message["_id"] in updates and is_pending_file(message):
                            url, attachment = updates[message["_id"]]
                            messages[i] = self._downloaded(message, url, attachment)
                            changed += 1
                    replaced[position] = messages
                self._replace_shards(rid, index, replaced)
        return changed

    @staticmethod
    def _downloaded(message: dict, url: str, attachment: dict | None) -> dict:
        updated = message
        updated["_importFile"].update({"rocketChatUrl": url, "downloaded": True})
        if attachment is not None:
            attachments = updated.setdefault("attachments", [])
            if attachment not in attachments:
                attachments.append(attachment)
        return updated

    def _files(self) -> dict[str, list[tuple[str, int, str]]]:
        """`file id -> [(room, _sort, message id)]` of pending messages, built on demand."""
        if self._file_index is None:
            files: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
            for rid, pending in self._pending.items():
                if not pending:
                    continue
                for shard in self._index(rid)["shards"]:
                    if shard["np"]:
                        for message in self._read_shard(rid, shard["f"]):
                            if is_pending_file(message):
                                files[message["_importFile"]["id"]].append(
                                    (rid, message["_sort"], message["_id"])
                                )
            self._file_index = files
        return self._file_index

    def _set_pending(self, room_id: str, pending: int) -> None:
        if self._pending.get(room_id, 0) == pending:
            return
        if pending:
            self._pending[room_id] = pending
        else:
            self._pending.pop(room_id, None)
        write_atomically(
            self._root / "pending.json", orjson.dumps(self._pending), fsync=self._store.fsync
        )

    # ======================================================================
    # room statistics
    # ======================================================================

    def refresh_room_stats(self, room_ids: Iterable[str], now_iso: str) -> None:
        """Recompute `msgs`, `lastMessage` and `lm` of rooms after their messages changed."""
        changes = {}
        with self._store.lock:
            for rid in set(room_ids):
                last = self.last_message(rid)
                fields: dict[str, Any] = {"msgs": self.message_count(rid), "_updatedAt": now_iso}
                if last is not None:
                    last.pop("_sort", None)
                    fields["lastMessage"] = last
                    fields["lm"] = last["ts"]
                changes[rid] = fields
            self.update_rooms(changes)

    # ======================================================================
    # files and caches
    # ======================================================================

    def _room_dir(self, room_id: str) -> Path:
        name = (
            room_id
            if _SAFE_DIR.match(room_id) and room_id not in (".", "..")
            else ("h-" + hashlib.sha256(room_id.encode()).hexdigest()[:32])
        )
        return self._root / "rooms" / name

    @staticmethod
    def _read_json(path: Path, default: Any) -> Any:
        try:
            return orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return default

    def _index(self, room_id: str) -> dict:
        index = self._indexes.get(room_id)
        if index is None:
            directory = self._room_dir(room_id)
            index = self._read_json(directory / "index.json", None)
            if index is None:
                index = {"shards": [], "seq": 0}
            else:
                self._remove_strays(directory, index)
            self._indexes[room_id] = index
            if len(self._indexes) > _INDEX_CACHE:
                self._indexes.popitem(last=False)
        else:
            self._indexes.move_to_end(room_id)
        return index

    @staticmethod
    def _remove_strays(directory: Path, index: dict) -> None:
        # Shards written by a write that crashed before its index was replaced.
        live = {s["f"] for s in index["shards"]}
        for path in directory.glob("*.json"):
            if path.stem.isdigit() and path.name not in live:
                path.unlink(missing_ok=True)
        for path in directory.glob(".*.tmp"):
            path.unlink(missing_ok=True)

    def _read_shard(self, room_id: str, name: str) -> list[dict]:
        """The shard's messages, freshly decoded: the caller owns them."""
        encoded = self._shards.get((room_id, name))
        if encoded is None:
            encoded = (self._room_dir(room_id) / name).read_bytes()
            self._remember_shard(room_id, name, encoded)
        else:
            self._shards.move_to_end((room_id, name))
        return orjson.loads(encoded)

    def _shard(self, room_id: str, meta: dict) -> list[dict]:
        return self._read_shard(room_id, meta["f"])

    def _remember_shard(self, room_id: str, name: str, encoded: bytes) -> None:
        self._shards[(room_id, name)] = encoded
        if len(self._shards) > _SHARD_CACHE:
            self._shards.popitem(last=False)

    def _id_map(self, room_id: str, index: dict) -> dict[int, int]:
        """`hash(_id) -> _sort` of a room, so a message whose time changed is moved, not doubled.

        A hash collision only costs a useless look into another shard: removal and
        replacement always compare the real `_id`.
        """
        ids = self._id_maps.get(room_id)
        if ids is None:
            ids = {}
            for shard in index["shards"]:
                path = self._room_dir(room_id) / shard["f"]
                for message in orjson.loads(path.read_bytes()):
                    ids[hash(message["_id"])] = message["_sort"]
            self._id_maps[room_id] = ids
            if len(self._id_maps) > _ID_MAPS:
                self._id_maps.popitem(last=False)
        else:
            self._id_maps.move_to_end(room_id)
        return ids

    def delete_room(self, room_id: str) -> None:
        with self._store.lock:
            if self._rooms.contains(doc_id=room_id):
                self._rooms.remove(doc_ids=[room_id])
            self._unindex_room(room_id)
            shutil.rmtree(self._room_dir(room_id), ignore_errors=True)
            self._indexes.pop(room_id, None)
            self._id_maps.pop(room_id, None)
            for key in [k for k in self._shards if k[0] == room_id]:
                del self._shards[key]
            self._set_pending(room_id, 0)
            self._file_index = None
            self._ordered = None


class MessageWriter:
    """Buffers messages per room and writes a room once it has enough (or on flush).

    Not thread-safe by itself; each flush takes the store lock, so readers run
    between batches.
    """

    def __init__(self, workspace: WorkspaceStore, per_room: int, in_total: int):
        self._workspace = workspace
        self._per_room = per_room
        self._in_total = in_total
        self._buffers: dict[str, list[dict]] = defaultdict(list)
        self._buffered = 0
        self.written = 0
        self.rooms: set[str] = set()

    def add(self, message: dict) -> None:
        buffer = self._buffers[message["rid"]]
        buffer.append(message)
        self._buffered += 1
        if len(buffer) >= self._per_room:
            self._flush_room(message["rid"])
        elif self._buffered >= self._in_total:
            largest = max(self._buffers, key=lambda rid: len(self._buffers[rid]))
            self._flush_room(largest)

    def flush(self) -> None:
        for room_id in list(self._buffers):
            self._flush_room(room_id)

    def _flush_room(self, room_id: str) -> None:
        batch = self._buffers.pop(room_id, [])
        if batch:
            self.rooms.add(room_id)
            self._buffered -= len(batch)
            self.written += self._workspace.upsert_messages(batch)

    def __enter__(self) -> MessageWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.flush()
