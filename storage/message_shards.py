"""Every room's messages on disk: shard files, each room's index, and caches over them.

    <root>/pending.json                 {room _id: messages waiting for a file download}
    <root>/rooms/<rid>/index.json       the room's shards, oldest first
    <root>/rooms/<rid>/<n>.json         one shard: messages sorted by `_sort`
    <root>/rooms/<rid>/members.json     beside them, the room's members (WorkspaceStore's)

A shard holds at most SHARD_MAX messages ordered by the key (`_sort`, `_id`), where
`_sort` is the message time in integer microseconds (Slack orders by microsecond
`ts`; the ISO `ts` carries only milliseconds). The index lists each shard's first and
last key and its counts, so a history page reads one or two shards however big the
room is, and totals come from the counts.

Writes never modify a shard file in place: changed shards are written under new
names, then the index is replaced atomically, then the old files are removed. A crash
leaves the old index pointing at old, intact files; strays are removed when the room
is next written.

MessageShards is not locked by itself: its owner calls it with the store's lock held.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import os
import re
import shutil
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any

import orjson

from storage.message_ids import MessageIds
from storage.store import write_atomically

SHARD_MAX = 1000
# Shards kept (encoded) for repeated reads of the newest pages.
_SHARD_CACHE = 24
# Rooms whose `_id -> _sort` map stays loaded while an import writes them.
_ID_MAPS = 8
_INDEX_CACHE = 512

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


def message_key(message: dict) -> tuple[int, str]:
    return message["_sort"], message["_id"]


def read_json(path: Path, default: Any) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return default


def _shard_meta(name: str, messages: list[dict]) -> dict:
    visible = main = pending = replies = roots = 0
    for message in messages:
        if not message.get("_hidden"):
            visible += 1
            if not message.get("tmid") or message.get("tshow"):
                main += 1
            if message.get("tmid"):
                replies += 1
            if "tcount" in message:
                roots += 1
        if "_importFile" in message and is_pending_file(message):
            pending += 1
    return {
        "f": name,
        "lo": list(message_key(messages[0])),
        "hi": list(message_key(messages[-1])),
        "n": len(messages),
        "nv": visible,
        "nm": main,
        "np": pending,
        "nr": replies,
        "nt": roots,
    }


class MessageShards:
    """The shard files of every room under `root`, and what is cached of them."""

    def __init__(self, root: Path, fsync: bool):
        self._root = root
        self._fsync = fsync
        (root / "rooms").mkdir(parents=True, exist_ok=True)
        # Encoded, not decoded: bytes cost the garbage collector nothing, while a cache
        # of decoded shards made it scan ~100k dicts per collection (half the import time).
        self._shards: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._indexes: OrderedDict[str, dict] = OrderedDict()
        self._id_maps: OrderedDict[str, dict[int, int]] = OrderedDict()
        self._file_index: dict[str, list[tuple[str, int, str]]] | None = None
        self._pending = read_json(root / "pending.json", {})
        self._ids = MessageIds(root, fsync)
        if not self._ids.ready and not any((root / "rooms").glob("*/index.json")):
            self._ids.mark_ready()

    # -- writing -------------------------------------------------------------

    def upsert(self, room_id: str, incoming: list[dict]) -> int:
        """Insert or replace one room's messages by `_id`; returns how many were written."""
        unique = {m["_id"]: m for m in incoming}
        batch = sorted(unique.values(), key=message_key)
        index = self.index(room_id)
        shards = index["shards"]
        ids = self._id_map(room_id, index)
        starts = [tuple(s["lo"]) for s in shards]

        def locate(key: tuple[int, str]) -> int:
            return max(bisect.bisect_right(starts, key) - 1, 0)

        # Per shard position: messages to add, and ids to drop (moved elsewhere or replaced).
        adds: dict[int, list[dict]] = defaultdict(list)
        drops: dict[int, set[str]] = defaultdict(set)
        for message in batch:
            position = locate(message_key(message))
            if (
                position == len(shards) - 1
                and shards[-1]["n"] >= SHARD_MAX
                and message_key(message) > tuple(shards[-1]["hi"])
            ):
                # Appending after a full shard starts a new one instead of rewriting it.
                position = len(shards)
            adds[position].append(message)
            drops[position].add(message["_id"])
            old = ids.get(hash(message["_id"]))
            if old is not None and old != message["_sort"] and shards:
                drops[locate((old, message["_id"]))].add(message["_id"])

        self._ids.add(
            (m["_id"], room_id, m["_sort"]) for m in batch if ids.get(hash(m["_id"])) != m["_sort"]
        )
        replaced: dict[int, list[dict]] = {}
        for position in sorted(set(adds) | set(drops)):
            current = self.shard(room_id, shards[position]) if position < len(shards) else []
            dropped = drops.get(position, ())
            kept = [m for m in current if m["_id"] not in dropped] if dropped else current
            added = adds.get(position, [])
            if kept and added and message_key(added[0]) < message_key(kept[-1]):
                merged = sorted(kept + added, key=message_key)
            else:
                merged = kept + added
            replaced[position] = merged
        self._replace(room_id, index, replaced)
        for message in batch:
            ids[hash(message["_id"])] = message["_sort"]
        if any(is_pending_file(m) for m in batch):
            self._file_index = None
        return len(batch)

    def _replace(self, room_id: str, index: dict, replaced: dict[int, list[dict]]) -> None:
        """Swap the shards at the given positions for new contents (split or dropped as needed)."""
        directory = self.room_dir(room_id)
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
                write_atomically(directory / name, encoded, fsync=self._fsync)
                new_shards.append(_shard_meta(name, chunk))
                written.append((name, encoded))
        index["shards"] = new_shards
        write_atomically(directory / "index.json", orjson.dumps(index), fsync=self._fsync)
        for name in obsolete:
            self._shards.pop((room_id, name), None)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / name)
        for name, encoded in written:
            self._remember_shard(room_id, name, encoded)
        self._set_pending(room_id, sum(s["np"] for s in new_shards))

    # -- lookups by id and by thread ----------------------------------------------

    def find(self, message_id: str) -> dict | None:
        """The stored message with that `_id` (the first room's, should two rooms share
        it), hidden or not; None when there is none."""
        if not self._ids.ready:
            self._build_id_index()
        for room_id, sort in self._ids.places(message_id):
            shards = self.index(room_id)["shards"]
            if not shards:
                continue
            starts = [tuple(s["lo"]) for s in shards]
            position = max(bisect.bisect_right(starts, (sort, message_id)) - 1, 0)
            for message in self.shard(room_id, shards[position]):
                if message["_id"] == message_id:
                    return message
        return None

    def _build_id_index(self) -> None:
        self._ids.clear()
        for index_path in (self._root / "rooms").glob("*/index.json"):
            for shard in read_json(index_path, {"shards": []})["shards"]:
                messages = orjson.loads((index_path.parent / shard["f"]).read_bytes())
                self._ids.add((m["_id"], m["rid"], m["_sort"]) for m in messages)
        self._ids.mark_ready()

    def thread_replies(self, room_id: str, thread_id: str) -> list[dict]:
        """Visible replies of a room's thread, oldest first."""
        replies = []
        for shard in self.index(room_id)["shards"]:
            # Shards written before the counts existed lack them: read those.
            if not shard.get("nr", 1):
                continue
            replies.extend(
                m
                for m in self.shard(room_id, shard)
                if m.get("tmid") == thread_id and not m.get("_hidden")
            )
        return replies

    def thread_roots(self, room_id: str) -> list[dict]:
        """Visible messages that start a thread (they carry `tcount`), oldest first."""
        roots = []
        for shard in self.index(room_id)["shards"]:
            if shard.get("nt", 1):
                roots.extend(
                    m for m in self.shard(room_id, shard) if "tcount" in m and not m.get("_hidden")
                )
        return roots

    # -- pending files (Rocket.Chat's pending-files importer) ---------------------

    def pending_count(self) -> int:
        return sum(self._pending.values())

    def pending_rooms(self) -> list[str]:
        """Rooms with messages whose file still waits for a download."""
        return [r for r, n in self._pending.items() if n]

    def mark_downloaded(self, downloads: list[tuple[str, str, dict | None]]) -> int:
        """What WorkspaceStore.mark_files_downloaded does, with the store's lock held."""
        changed = 0
        where = self._files()
        per_shard: dict[str, dict[int, dict[str, tuple[str, dict | None]]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for file_id, url, attachment in downloads:
            for rid, sort, mid in where.pop(file_id, ()):
                index = self.index(rid)
                starts = [tuple(s["lo"]) for s in index["shards"]]
                position = max(bisect.bisect_right(starts, (sort, mid)) - 1, 0)
                per_shard[rid][position][mid] = (url, attachment)
        for rid, positions in per_shard.items():
            index = self.index(rid)
            replaced = {}
            for position, updates in positions.items():
                messages = self.shard(rid, index["shards"][position])
                for i, message in enumerate(messages):
                    if message["_id"] in updates and is_pending_file(message):
                        url, attachment = updates[message["_id"]]
                        messages[i] = self._downloaded(message, url, attachment)
                        changed += 1
                replaced[position] = messages
            self._replace(rid, index, replaced)
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
                for shard in self.index(rid)["shards"]:
                    if shard["np"]:
                        for message in self.read_shard(rid, shard["f"]):
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
            self._root / "pending.json", orjson.dumps(self._pending), fsync=self._fsync
        )

    # -- files and caches --------------------------------------------------------

    def room_dir(self, room_id: str) -> Path:
        """Named by the room id when that is a safe file name, by its hash otherwise."""
        name = (
            room_id
            if _SAFE_DIR.match(room_id) and room_id not in (".", "..")
            else ("h-" + hashlib.sha256(room_id.encode()).hexdigest()[:32])
        )
        return self._root / "rooms" / name

    def index(self, room_id: str) -> dict:
        """The room's shard list (`shards`, oldest first) and its next file number (`seq`)."""
        index = self._indexes.get(room_id)
        if index is None:
            directory = self.room_dir(room_id)
            index = read_json(directory / "index.json", None)
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

    def read_shard(self, room_id: str, name: str) -> list[dict]:
        """The shard's messages, freshly decoded: the caller owns them."""
        encoded = self._shards.get((room_id, name))
        if encoded is None:
            encoded = (self.room_dir(room_id) / name).read_bytes()
            self._remember_shard(room_id, name, encoded)
        else:
            self._shards.move_to_end((room_id, name))
        return orjson.loads(encoded)

    def shard(self, room_id: str, meta: dict) -> list[dict]:
        return self.read_shard(room_id, meta["f"])

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
                path = self.room_dir(room_id) / shard["f"]
                for message in orjson.loads(path.read_bytes()):
                    ids[hash(message["_id"])] = message["_sort"]
            self._id_maps[room_id] = ids
            if len(self._id_maps) > _ID_MAPS:
                self._id_maps.popitem(last=False)
        else:
            self._id_maps.move_to_end(room_id)
        return ids

    def close(self) -> None:
        """Make what was written durable where writes skipped it (the id index)."""
        self._ids.close()

    def delete(self, room_id: str) -> None:
        """Remove a room's messages, files and cached state."""
        shutil.rmtree(self.room_dir(room_id), ignore_errors=True)
        self._indexes.pop(room_id, None)
        self._id_maps.pop(room_id, None)
        for key in [k for k in self._shards if k[0] == room_id]:
            del self._shards[key]
        self._set_pending(room_id, 0)
        self._file_index = None
