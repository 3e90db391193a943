"""HipChat Server / Data Center export (`.tar.gz`, or `.tar.gz.aes` with a password).

Layout: `users.json`, `rooms.json`, `rooms/<roomId>/history.json` and
`users/<userId>/history.json`, each a JSON array of one-key objects naming the record's
kind (`{"User": {...}}`); everything else (the attachment bytes, emoticons, metadata)
is not read.

The archive is read front to back exactly once: decryption, gunzip, tar and JSON all
work on streams, so memory stays flat whatever the export's size and nothing is ever
written to disk. A tar cannot be seeked in that mode, so records are reported in the
order the archive happens to hold them; references between them are import ids, which
the caller resolves after the whole export has been read.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ijson

from ferry.chat.parsers.base import (
    ArchiveLimits,
    ImportFileError,
    PrepareOptions,
    Record,
    RecordSink,
)
from ferry.chat.parsers.hipchat_bytes import (
    EXTRACT_ERROR,
    TOO_LARGE,
    ChunkReader,
    ValueBoundedReader,
    decrypt_if_needed,
    gunzip_if_needed,
    read_chunks,
)
from ferry.chat.parsers.hipchat_text import message_text, parse_timestamp
from ferry.chat.parsers.json_arrays import JsonDepthGuard, JsonTooDeep
from ferry.kernel.rocketchat import ROCKET_CAT
from ferry.kernel.statuses import RoomType

SOURCE = "hipchat-enterprise"

# Long-name and pax headers are read whole by tarfile; real ones are a few hundred bytes.
_MAX_EXTENDED_HEADER = 1024**2

INVALID_JSON = "error-import-file-invalid-json"
EMPTY = "error-import-file-is-empty"


class HipChatImporter:
    key = "hipchatenterprise"
    name = "HipChat (tar.gz)"

    def prepare(self, source: Path, sink: RecordSink, options: PrepareOptions) -> None:
        limits = options.limits
        with open(source, "rb") as raw:
            size = source.stat().st_size
            chunks = read_chunks(raw, size, options.on_progress)
            chunks = decrypt_if_needed(chunks, options.password)
            chunks = gunzip_if_needed(chunks, limits)
            found = _HistoryParser(sink, limits).read_tar(ChunkReader(chunks))
        if not found:
            raise ImportFileError(f"{EMPTY}: no HipChat users, rooms or messages in this archive")
        if options.on_progress:
            options.on_progress(100.0)


_EXTENDED_HEADERS = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)
_CLEAN_END = (tarfile.EOFHeaderError, tarfile.EmptyHeaderError)


class _GuardedTarInfo(tarfile.TarInfo):
    @classmethod
    def fromtarfile(cls, archive: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(archive)
        except tarfile.HeaderError as error:
            # TarFile.next() reports a bad or cut header after the first one as a quiet end
            # of archive; remember why, to tell a real end from a truncated download.
            archive.ferry_stop = error  # type: ignore[attr-defined]
            raise

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        # tarfile reads long-name and pax headers into memory whole, before we see them.
        if self.type in _EXTENDED_HEADERS and self.size > _MAX_EXTENDED_HEADER:
            raise ImportFileError(f"{TOO_LARGE}: a tar header of {self.size} bytes")
        return super()._proc_member(archive)  # type: ignore[misc]


def _unsafe(member: tarfile.TarInfo) -> str | None:
    """Why a member must not be read, or None; its content is never followed either way."""
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.ischr() or member.isblk() or member.isfifo():
        return "a device file"
    name = member.name.replace("\\", "/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "an absolute path"
    if ".." in name.split("/"):
        return "a path outside the export"
    if not (member.isreg() or member.isdir()):
        return "an unsupported kind of entry"
    return None


def _ref_id(value: Any) -> str | None:
    """A user or room reference: HipChat writes a bare id or an object with an `id`."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class _HistoryParser:
    def __init__(self, sink: RecordSink, limits: ArchiveLimits):
        self.sink = sink
        self.limits = limits
        self.found = False
        self._dm_rooms: set[str] = set()
        # Each private message is exported under both participants. An id is remembered
        # only until its twin turns up, so this holds the unpaired ones, not every DM.
        self._unpaired: set[str] = set()
        self._unknown_kinds: set[str] = set()
        self._skipped = 0

    def read_tar(self, stream: ChunkReader) -> bool:
        try:
            with tarfile.open(fileobj=stream, mode="r|", tarinfo=_GuardedTarInfo) as archive:
                self._walk(archive)
                stop = getattr(archive, "ferry_stop", None)
            if not isinstance(stop, _CLEAN_END):
                raise ImportFileError(
                    f"{EXTRACT_ERROR}: the tar data is corrupt or truncated ({stop})"
                )
            stream.drain()
        except (tarfile.TarError, EOFError) as error:
            raise ImportFileError(f"{EXTRACT_ERROR}: {error}") from None
        return self.found

    def _walk(self, archive: tarfile.TarFile) -> None:
        count = 0
        while (member := archive.next()) is not None:
            # In stream mode TarFile still keeps every header it has seen; we need none.
            archive.members.clear()
            count += 1
            if count > self.limits.max_members:
                raise ImportFileError(
                    f"{TOO_LARGE}: the archive has more than {self.limits.max_members} entries"
                )
            problem = _unsafe(member)
            if problem:
                self.sink.warn(f"skipped {member.name!r}: it is {problem}")
                continue
            if not member.isreg():
                continue
            handler = self._handler_for(member.name)
            if handler is None:
                # Attachment bytes and the like pass through unread; a big video must not
                # fail the import, and max_total_size still bounds what streams past.
                continue
            if member.size > self.limits.max_member_size:
                raise ImportFileError(
                    f"{TOO_LARGE}: {member.name} is {member.size} bytes, over the limit of "
                    f"{self.limits.max_member_size}"
                )
            self._read_json(archive, member, handler)

    def _handler_for(self, name: str) -> Callable[[Any], None] | None:
        # Matched on the tail of the path, so an export re-packed under a top folder works.
        parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
        basename = parts[-1] if parts else ""
        if basename == "users.json":
            return self._user
        if basename == "rooms.json":
            return self._room
        if basename == "history.json" and len(parts) >= 3 and parts[-3] in ("rooms", "users"):
            owner = parts[-2]
            if parts[-3] == "rooms":
                return lambda item: self._room_message(owner, item)
            return self._private_message
        if basename.endswith(".json") and basename not in ("emoticons.json", "metadata.json"):
            self.sink.warn(f"skipped {name!r}: not a file HipChat exports are known to hold")
        return None

    def _read_json(
        self, archive: tarfile.TarFile, member: tarfile.TarInfo, handler: Callable[[Any], None]
    ) -> None:
        extracted = archive.extractfile(member)
        assert extracted is not None  # regular files always extract
        reader = ValueBoundedReader(
            JsonDepthGuard(extracted, member.name), self.limits.max_json_value_bytes, member.name
        )
        self._skipped = 0
        entries = 0
        try:
            for item in ijson.items(reader, "item", use_float=True):
                reader.item_done()
                entries += 1
                handler(item)
        except (ijson.JSONError, JsonTooDeep) as error:
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ImportFileError(
                f"{INVALID_JSON}: {member.name} is not valid JSON ({detail})"
            ) from None
        if not entries and reader.opening != b"[":
            self.sink.warn(f"{member.name} holds no entries (a JSON array was expected)")
        elif self._skipped:
            self.sink.warn(
                f"{member.name}: skipped {self._skipped} entries missing an id, an author "
                "or a readable timestamp"
            )

    # -- records ------------------------------------------------------------

    def _user(self, item: Any) -> None:
        kind, user = _unwrap(item)
        import_id = _ref_id(user)
        if kind != "User" or import_id is None:
            self._skipped += 1
            return
        email = _text(user.get("email"))
        avatar = _text(user.get("avatar"))
        self.found = True
        self.sink.add_user(
            {
                "importIds": [import_id],
                "username": _text(user.get("mention_name")),
                "name": _text(user.get("name")),
                "emails": [email] if email else [],
                "type": "user",
                "deleted": bool(user.get("is_deleted")),
                "roles": ["user"],
                "utcOffset": None,
                # The export wraps the base64 at 76 columns
                "avatarUrl": "data:image/png;base64," + "".join(avatar.split()) if avatar else None,
                "statusText": None,
                "bio": _text(user.get("title")),
            }
        )

    def _room(self, item: Any) -> None:
        kind, room = _unwrap(item)
        import_id = _ref_id(room)
        if kind != "Room" or import_id is None:
            self._skipped += 1
            return
        users: list[str] = []
        # Public rooms list nobody under `members`; `participants` is who was in them.
        for key in ("members", "participants"):
            for ref in room.get(key) or []:
                user_id = _ref_id(ref)
                if user_id is not None and user_id not in users:
                    users.append(user_id)
        owner = _ref_id(room.get("owner"))
        self.found = True
        self.sink.add_channel(
            {
                "importIds": [import_id],
                "name": _text(room.get("name")),
                "t": RoomType.PRIVATE_GROUP
                if room.get("privacy") == "private"
                else RoomType.CHANNEL,
                "users": users,
                "u": {"_id": owner} if owner else None,
                "topic": _text(room.get("topic")),
                "description": None,
                "ts": parse_timestamp(room.get("created")),
                "archived": bool(room.get("is_archived")),
            }
        )

    def _room_message(self, room_id: str, item: Any) -> None:
        kind, body = _unwrap(item)
        if kind == "UserMessage":
            record = self._message(body, f"{room_id}-user", room_id, _ref_id(body.get("sender")))
        elif kind == "NotificationMessage":
            record = self._message(body, f"{room_id}-notif", room_id, ROCKET_CAT)
            sender = body.get("sender")
            if record is not None and sender not in (None, ""):
                record["alias"] = str(sender)
        elif kind == "TopicRoomMessage":
            record = self._message(body, f"{room_id}-topic", room_id, _ref_id(body.get("sender")))
            if record is not None:
                record["t"] = "room_changed_topic"
                record["groupable"] = False
        elif kind in ("ArchiveRoomMessage", "GuestAccessMessage"):
            return
        else:
            self._unknown(kind)
            return
        if record is not None:
            self.sink.add_message(record)

    def _private_message(self, item: Any) -> None:
        kind, body = _unwrap(item)
        if kind != "PrivateUserMessage":
            self._unknown(kind)
            return
        sender, receiver = _ref_id(body.get("sender")), _ref_id(body.get("receiver"))
        if receiver is None:
            self._skipped += 1
            return
        record = self._message(body, "private", "", sender)
        if record is None or not self._first_sighting(record["_id"]):
            return
        pair = sorted({sender, receiver})
        rid = "".join(sorted([sender, receiver]))  # Rocket.Chat's DM import id, kept for re-imports
        record["rid"] = rid
        if rid not in self._dm_rooms:
            self._dm_rooms.add(rid)
            self.sink.add_channel(
                {
                    "importIds": [rid],
                    "name": None,
                    "t": RoomType.DIRECT,
                    "users": pair,
                    "u": None,
                    "topic": None,
                    "description": None,
                    "ts": None,
                    "archived": False,
                }
            )
        self.sink.add_message(record)

    def _first_sighting(self, message_id: str) -> bool:
        if message_id in self._unpaired:
            self._unpaired.discard(message_id)
            return False
        self._unpaired.add(message_id)
        return True

    def _message(self, body: dict, id_part: str, rid: str, author: str | None) -> Record | None:
        message_id = _ref_id(body)
        ts = parse_timestamp(body.get("timestamp"))
        if message_id is None or ts is None or author is None:
            self._skipped += 1
            return None
        self.found = True
        record: Record = {
            "_id": f"hipchatenterprise-{id_part}-{message_id}",
            "rid": rid,
            "u": {"_id": author},
            "msg": message_text(body),
            "ts": ts,
        }
        attachment = body.get("attachment")
        if isinstance(attachment, dict) and _text(attachment.get("url")):
            name = _text(attachment.get("name"))
            size = attachment.get("size")
            record["_importFile"] = {
                "downloadUrl": attachment["url"],
                "id": f"{message_id}-{name or 'attachment'}",
                "size": int(size) if isinstance(size, int | float) and size >= 0 else None,
                "name": name,
                "external": False,
                "source": SOURCE,
            }
        return record

    def _unknown(self, kind: str) -> None:
        if kind not in self._unknown_kinds:
            self._unknown_kinds.add(kind)
            self.sink.warn(f"skipped HipChat messages of an unknown kind: {kind or 'unnamed'}")


def _unwrap(item: Any) -> tuple[str, dict]:
    """`{"UserMessage": {...}}` -> ("UserMessage", {...})."""
    if isinstance(item, dict) and len(item) == 1:
        kind, body = next(iter(item.items()))
        if isinstance(body, dict):
            return kind, body
    return "", {}
