"""Rooms and messages of the imported workspace.

TinyDB holds a whole file in memory and rewrites it on every write, which is fine for
rooms (thousands, written in batches) and hopeless for a million messages. So:

    <state_dir>/workspace.json                TinyDB, table "rooms" keyed by room _id,
                                              table "uploads" (files messages point at)
    <state_dir>/workspace/rooms/<rid>/members.json  member user ids
    <state_dir>/workspace/...                 messages, in shards (storage.message_shards)

Every message must carry `_sort`. Documents returned by read methods are copies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from tinydb.table import Document

from ferry.kernel.statuses import RoomType
from storage.message_shards import MessageShards, is_pending_file, message_key, read_json
from storage.store import Store, detached, write_atomically

# Room fields the in-memory lookups and orderings depend on.
_INDEXED_FIELDS = frozenset({"name", "importIds", "uids", "usernames", "t"})


def _visible(message: dict) -> bool:
    return not message.get("_hidden")


def _main_visible(message: dict) -> bool:
    # Thread replies show in the room only when broadcast (tshow), as in Rocket.Chat.
    return not message.get("_hidden") and (not message.get("tmid") or bool(message.get("tshow")))


class WorkspaceStore:
    """Rooms (TinyDB) and their sharded messages; every method takes `store.lock`."""

    def __init__(self, store: Store):
        self._store = store
        self._shards = MessageShards(store.state_dir / "workspace", store.fsync)
        self._by_name: dict[str, str] = {}
        self._by_import_id: dict[str, str] = {}
        self._by_members: dict[str, str] = {}
        self._ordered: dict[str, list[str]] | None = None
        # user id -> ids of the rooms they are a member of; built on first use.
        self._rooms_of: dict[str, set[str]] | None = None
        with store.lock:
            for room in self._rooms.all():
                self._index_room(room)

    def close(self) -> None:
        with self._store.lock:
            self._shards.close()

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
        if room.get("t") == RoomType.DIRECT and room.get("uids"):
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
                if self._rooms_of is not None:
                    # Members are written before their room; a membership lookup built
                    # in between missed them.
                    for user_id in self.members(room["_id"]):
                        self._rooms_of.setdefault(user_id, set()).add(room["_id"])
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
            ids = self._ordering().get(room_type or "", [])
            end = None if count is None else offset + count
            return [self.room(rid) for rid in ids[offset:end]], len(ids)

    def _ordering(self) -> dict[str, list[str]]:
        """Room ids by type (`""` for all), by name then id; call with the lock held."""
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
        return self._ordered

    def room_count(self) -> int:
        with self._store.lock:
            return len(self._rooms)

    def members(self, room_id: str) -> list[str]:
        with self._store.lock:
            return read_json(self._shards.room_dir(room_id) / "members.json", [])

    def set_members(self, room_id: str, user_ids: Iterable[str]) -> None:
        members = sorted(set(user_ids))
        with self._store.lock:
            directory = self._shards.room_dir(room_id)
            directory.mkdir(parents=True, exist_ok=True)
            before = self.members(room_id) if self._rooms_of is not None else []
            write_atomically(
                directory / "members.json", orjson.dumps(members), fsync=self._store.fsync
            )
            if self._rooms_of is not None:
                for user_id in before:
                    self._rooms_of.get(user_id, set()).discard(room_id)
                for user_id in members:
                    self._rooms_of.setdefault(user_id, set()).add(room_id)

    # ======================================================================
    # membership: who may read a private group or a direct-message room
    # ======================================================================

    def _memberships(self) -> dict[str, set[str]]:
        if self._rooms_of is None:
            rooms_of: dict[str, set[str]] = defaultdict(set)
            for room in self._rooms.all():
                for user_id in self.members(room["_id"]):
                    rooms_of[user_id].add(room["_id"])
            self._rooms_of = dict(rooms_of)
        return self._rooms_of

    def is_member(self, room_id: str, user_id: str) -> bool:
        with self._store.lock:
            return room_id in self._memberships().get(user_id, ())

    def member_rooms(
        self, user_id: str, room_type: str, offset: int = 0, count: int | None = None
    ) -> tuple[list[dict], int]:
        """The rooms of one type `user_id` is a member of, ordered as `rooms()`; `(page, total)`."""
        with self._store.lock:
            mine = self._memberships().get(user_id, set())
            ids = [rid for rid in self._ordering().get(room_type, []) if rid in mine]
            end = None if count is None else offset + count
            return [self.room(rid) for rid in ids[offset:end]], len(ids)

    def delete_room(self, room_id: str) -> None:
        with self._store.lock:
            if self._rooms.contains(doc_id=room_id):
                self._rooms.remove(doc_ids=[room_id])
            self._unindex_room(room_id)
            if self._rooms_of is not None:
                for user_id in self.members(room_id):
                    self._rooms_of.get(user_id, set()).discard(room_id)
            self._shards.delete(room_id)
            self._ordered = None

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
                written += self._shards.upsert(room_id, batch)
        return written

    def writer(self, per_room: int = 5000, in_total: int = 50_000) -> MessageWriter:
        """A buffer that groups messages by room and writes them in large batches."""
        return MessageWriter(self, per_room, in_total)

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
        newest_first: bool = True,
    ) -> tuple[list[dict], int]:
        """Visible messages with `since <= _sort < before`, newest first unless
        `newest_first` is false (then `offset` counts from the oldest); `(page, total)`.

        `thread_messages=False` hides thread replies not broadcast to the room, as
        Rocket.Chat's REST history does by default. Hidden messages never show.
        """
        wanted, counter = (_visible, "nv") if thread_messages else (_main_visible, "nm")
        page: list[dict] = []
        total = 0
        skip = max(offset, 0)

        def after_range(sort_key: int) -> bool:
            # Past the far end of the range in the walking direction.
            if newest_first:
                return since is not None and sort_key < since
            return before is not None and sort_key >= before

        def before_range(sort_key: int) -> bool:
            # Not yet reached the range in the walking direction.
            if newest_first:
                return before is not None and sort_key >= before
            return since is not None and sort_key < since

        with self._store.lock:
            shards = self._shards.index(room_id)["shards"]
            for shard in reversed(shards) if newest_first else shards:
                first, last = (
                    (shard["hi"], shard["lo"]) if newest_first else (shard["lo"], shard["hi"])
                )
                if before_range(last[0]):
                    continue
                if after_range(first[0]):
                    break
                inside = (before is None or shard["hi"][0] < before) and (
                    since is None or shard["lo"][0] >= since
                )
                if inside and (len(page) >= count or skip >= shard[counter]):
                    total += shard[counter]
                    if len(page) < count:
                        skip -= shard[counter]
                    continue
                messages = self._shards.shard(room_id, shard)
                for message in reversed(messages) if newest_first else messages:
                    if before_range(message["_sort"]):
                        continue
                    if after_range(message["_sort"]):
                        break
                    if not wanted(message):
                        continue
                    total += 1
                    if skip:
                        skip -= 1
                    elif len(page) < count:
                        page.append(message)
            return page, total

    def message(self, message_id: str) -> dict | None:
        """The stored message with that `_id`, hidden or not (an index lookup, then one shard)."""
        with self._store.lock:
            return self._shards.find(message_id)

    def thread_messages(self, room_id: str, thread_id: str) -> list[dict]:
        """The visible replies of a thread in a room, oldest first."""
        with self._store.lock:
            return self._shards.thread_replies(room_id, thread_id)

    def thread_roots(self, room_id: str) -> list[dict]:
        """The visible messages of a room that start a thread, oldest first."""
        with self._store.lock:
            return self._shards.thread_roots(room_id)

    def message_count(self, room_id: str, *, visible_only: bool = True) -> int:
        with self._store.lock:
            field = "nv" if visible_only else "n"
            return sum(s[field] for s in self._shards.index(room_id)["shards"])

    def last_message(self, room_id: str) -> dict | None:
        """The newest message a room list shows as `lastMessage` (visible, not a thread reply)."""
        with self._store.lock:
            for shard in reversed(self._shards.index(room_id)["shards"]):
                if shard["nm"]:
                    for message in reversed(self._shards.shard(room_id, shard)):
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
                        for s in self._shards.index(room_id)["shards"]
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
                    for m in self._shards.read_shard(room_id, shard["f"])
                    if after is None or message_key(m) > after
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
            return self._shards.pending_count()

    def pending_file_messages(self, room_id: str | None = None) -> Iterator[dict]:
        """Messages whose `_importFile` still waits for a download, room by room."""
        with self._store.lock:
            rooms = [room_id] if room_id else self._shards.pending_rooms()
        for rid in rooms:
            yield from self.messages(rid, pending_files_only=True)

    def mark_files_downloaded(self, downloads: Iterable[tuple[str, str, dict | None]]) -> int:
        """For each `(file_id, url, attachment)`: every pending message with that
        `_importFile.id` gets `rocketChatUrl=url`, `downloaded=True` and the attachment
        added (once). Returns how many messages changed."""
        downloads = list(downloads)
        with self._store.lock:
            return self._shards.mark_downloaded(downloads)

    # ======================================================================
    # uploads: the files imported messages point at
    # ======================================================================

    @property
    def _uploads(self):
        return self._store.db("workspace").table("uploads")

    def save_upload(self, upload: dict) -> None:
        """Insert or replace an upload record, keyed by its `_id`."""
        upload = detached(upload)

        def replace(document: dict) -> None:
            document.clear()
            document.update(upload)

        with self._store.lock:
            if self._uploads.contains(doc_id=upload["_id"]):
                self._uploads.update(replace, doc_ids=[upload["_id"]])
            else:
                self._uploads.insert(Document(upload, doc_id=upload["_id"]))

    def upload(self, upload_id: str) -> dict | None:
        with self._store.lock:
            return detached(self._uploads.get(doc_id=upload_id))

    def uploads(self) -> list[dict]:
        """Every upload record (moving an installation to another backend)."""
        with self._store.lock:
            return detached([dict(u) for u in self._uploads.all()])

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
