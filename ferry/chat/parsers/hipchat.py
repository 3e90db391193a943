"""HipChat Server / Data Center export (`.tar.gz`, or `.tar.gz.aes` with a password).

Layout (shared/research/rocketchat-import.md §6.6): `users.json`, `rooms.json`,
`rooms/<roomId>/history.json` and `users/<userId>/history.json`; everything else (the
attachment bytes, emoticons, metadata) is not read.

The archive is read front to back exactly once: decryption, gunzip, tar and JSON all
work on streams, so memory stays flat whatever the export's size and nothing is ever
written to disk. A tar cannot be seeked in that mode, so records are reported in the
order the archive happens to hold them; references between them are import ids, which
the caller resolves after the whole export has been read.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import ijson
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from markdownify import MarkdownConverter, abstract_inline_conversion

from ferry.chat.parsers.base import (
    ArchiveLimits,
    ImportFileError,
    PrepareOptions,
    Record,
    RecordSink,
)
from ferry.chat.parsers.json_arrays import JsonDepthGuard, JsonTooDeep

SOURCE = "hipchat-enterprise"
BOT_USER = "rocket.cat"

OPENSSL_MAGIC = b"Salted__"
# The third byte (deflate) makes a wrong key that passes for right even rarer.
GZIP_MAGIC = b"\x1f\x8b\x08"
_CHUNK = 64 * 1024
# Below this much output a high ratio is just tar padding and tiny JSON, not a bomb.
_RATIO_FLOOR = 16 * 1024**2
# Long-name and pax headers are read whole by tarfile; real ones are a few hundred bytes.
_MAX_EXTENDED_HEADER = 1024**2

EXTRACT_ERROR = "error-import-file-extract-error"
TOO_LARGE = "error-import-file-too-large"
INVALID_JSON = "error-import-file-invalid-json"
EMPTY = "error-import-file-is-empty"


class HipChatImporter:
    key = "hipchatenterprise"
    name = "HipChat (tar.gz)"

    def prepare(self, source: Path, sink: RecordSink, options: PrepareOptions) -> None:
        limits = options.limits
        with open(source, "rb") as raw:
            size = source.stat().st_size
            chunks = _read_chunks(raw, size, options.on_progress)
            chunks = _decrypt_if_needed(chunks, options.password)
            chunks = _gunzip_if_needed(chunks, limits)
            found = _HistoryParser(sink, limits).read_tar(_ChunkReader(chunks))
        if not found:
            raise ImportFileError(f"{EMPTY}: no HipChat users, rooms or messages in this archive")
        if options.on_progress:
            options.on_progress(100.0)


# ---------------------------------------------------------------------------
# Byte pipeline: file -> (decrypt) -> (gunzip) -> tar


def _read_chunks(
    raw: BinaryIO, size: int, on_progress: Callable[[float], None] | None
) -> Iterator[bytes]:
    done = 0
    reported = -1
    while chunk := raw.read(_CHUNK):
        done += len(chunk)
        yield chunk
        if on_progress and size:
            percent = int(99 * done / size)  # 100 only once every record has been reported
            if percent != reported:
                reported = percent
                on_progress(float(percent))


def _peek(chunks: Iterator[bytes], count: int) -> tuple[bytes, Iterator[bytes]]:
    """The first `count` bytes (fewer at end of input) and an iterator that still yields them."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= count:
            break
    return head[:count], _prepend(head, chunks)


def _prepend(head: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


def evp_bytes_to_key(password: bytes, salt: bytes, digest: str) -> tuple[bytes, bytes]:
    """OpenSSL's EVP_BytesToKey, one iteration: the AES-256 key and CBC iv of `openssl enc`."""
    derived = b""
    block = b""
    while len(derived) < 48:
        block = hashlib.new(digest, block + password + salt).digest()
        derived += block
    return derived[:32], derived[32:48]


def _decrypt_if_needed(chunks: Iterator[bytes], password: str | None) -> Iterator[bytes]:
    head, chunks = _peek(chunks, 32)
    if not head.startswith(OPENSSL_MAGIC):
        return chunks
    if not password:
        raise ImportFileError(
            "a password is needed: this HipChat export is encrypted (.tar.gz.aes); "
            "give the password that was set when it was exported"
        )
    if len(head) < 32:
        raise ImportFileError(f"{EXTRACT_ERROR}: the encrypted export is truncated")
    salt, first_block = head[8:16], head[16:32]
    # `openssl enc` hashed the password with MD5 before OpenSSL 1.1.0 and with SHA-256
    # since; HipChat's export used whichever its host had, so both are tried and the
    # gzip header that must open the plaintext tells which one is right.
    for digest in ("md5", "sha256"):
        key, iv = evp_bytes_to_key(password.encode("utf-8"), salt, digest)
        probe = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        if probe.update(first_block).startswith(GZIP_MAGIC):
            return _decrypt(_skip(chunks, 16), key, iv)
    raise ImportFileError(
        "wrong password: the HipChat export could not be decrypted with it "
        "(expected an `openssl enc -aes-256-cbc` file made with the MD5 or SHA-256 key derivation)"
    )


def _skip(chunks: Iterator[bytes], count: int) -> Iterator[bytes]:
    for chunk in chunks:
        if count >= len(chunk):
            count -= len(chunk)
            continue
        yield chunk[count:]
        count = 0


def _decrypt(chunks: Iterator[bytes], key: bytes, iv: bytes) -> Iterator[bytes]:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    for chunk in chunks:
        yield unpadder.update(decryptor.update(chunk))
    try:
        tail = decryptor.finalize()
        yield unpadder.update(tail) + unpadder.finalize()
    except ValueError as error:
        raise ImportFileError(
            f"{EXTRACT_ERROR}: the encrypted export is truncated or corrupt ({error})"
        ) from None


def _gunzip_if_needed(chunks: Iterator[bytes], limits: ArchiveLimits) -> Iterator[bytes]:
    head, chunks = _peek(chunks, 2)
    if head != GZIP_MAGIC[:2]:
        return _bounded(chunks, limits)  # an already gunzipped .tar is welcome too
    return _gunzip(chunks, limits)


def _bounded(chunks: Iterator[bytes], limits: ArchiveLimits) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        _check_inflation(total, total, limits)
        yield chunk


def _gunzip(chunks: Iterator[bytes], limits: ArchiveLimits) -> Iterator[bytes]:
    """Inflate with zlib rather than tarfile's own reader: zlib checks the CRC and the
    length trailer, so a corrupt or truncated download is reported instead of imported
    half-way. Output is capped per call so a bomb never sits in memory."""
    inflater = zlib.decompressobj(wbits=31)
    mid_member = False
    consumed = produced = 0
    try:
        for chunk in chunks:
            consumed += len(chunk)
            data = chunk
            while data:
                if not mid_member:
                    # gzip allows members back to back (`cat a.gz b.gz`) and zero padding
                    data = data.lstrip(b"\0")
                    if not data:
                        break
                    mid_member = True
                out = inflater.decompress(data, _CHUNK)
                data = inflater.unconsumed_tail
                if inflater.eof:
                    data = inflater.unused_data + data
                    inflater = zlib.decompressobj(wbits=31)
                    mid_member = False
                produced += len(out)
                _check_inflation(produced, consumed, limits)
                if out:
                    yield out
    except zlib.error as error:
        raise ImportFileError(f"{EXTRACT_ERROR}: the gzip data is corrupt ({error})") from None
    if mid_member:
        raise ImportFileError(f"{EXTRACT_ERROR}: the gzip data ends too early (truncated file?)")


def _check_inflation(produced: int, consumed: int, limits: ArchiveLimits) -> None:
    if produced > limits.max_total_size:
        raise ImportFileError(
            f"{TOO_LARGE}: the export inflates to more than {limits.max_total_size} bytes"
        )
    if produced > _RATIO_FLOOR and produced > consumed * limits.max_compression_ratio:
        raise ImportFileError(
            f"{TOO_LARGE}: the export inflates more than {limits.max_compression_ratio} "
            "times its size; refusing a likely decompression bomb"
        )


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks, for tarfile and ijson."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = memoryview(chunk)
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count

    def drain(self) -> None:
        """Read to the end, so the gzip trailer's CRC is checked after tar's end marker."""
        for _ in self._chunks:
            pass
        self._buffer = memoryview(b"")


class _ValueBoundedReader:
    """Reads a tar member for ijson, refusing a single JSON value over the size limit:
    ijson builds each array item in memory, and nothing else bounds an item's size."""

    def __init__(self, member: BinaryIO, limit: int, name: str):
        self._member = member
        self._limit = limit
        self._name = name
        self._since_item = 0
        self.opening = b""  # the first non-blank byte: `[` for the arrays HipChat writes

    def read(self, size: int = -1) -> bytes:
        data = self._member.read(size if size >= 0 else _CHUNK)
        if not self.opening:
            self.opening = data.lstrip()[:1]
        self._since_item += len(data)
        if self._since_item > self._limit:
            raise ImportFileError(
                f"{TOO_LARGE}: {self._name} holds a single entry over {self._limit} bytes"
            )
        return data

    def item_done(self) -> None:
        self._since_item = 0


# ---------------------------------------------------------------------------
# Tar walking and the HipChat records


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

    def read_tar(self, stream: _ChunkReader) -> bool:
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
        reader = _ValueBoundedReader(
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
                "t": "p" if room.get("privacy") == "private" else "c",
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
            record = self._message(body, f"{room_id}-notif", room_id, BOT_USER)
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
                    "t": "d",
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
            "msg": _message_text(body),
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


# ---------------------------------------------------------------------------
# Text and time


class _ChatMarkdown(MarkdownConverter):
    """HTML (integration notifications) to the Markdown Rocket.Chat renders."""

    class Options(MarkdownConverter.DefaultOptions):
        heading_style = "ATX"
        bullets = "-"
        # Escaping would turn `@john_doe` into `@john\_doe` and break the mention.
        escape_asterisks = False
        escape_underscores = False

    # Chat Markdown: `_italic_`, and a line break is just a newline.
    convert_em = convert_i = abstract_inline_conversion(lambda self: "_")

    def convert_br(self, el: Any, text: str, parent_tags: Any) -> str:
        return "\n"

    def convert_img(self, el: Any, text: str, parent_tags: Any) -> str:
        # A link rather than an inline image, as Rocket.Chat's HipChat importer wrote them.
        src = el.attrs.get("src") or ""
        alt = el.attrs.get("alt") or src
        return f"[{alt}]({src})" if src else alt


def html_to_markdown(html: str) -> str:
    return _ChatMarkdown().convert(html).strip()


def _message_text(body: dict) -> str:
    text = body.get("message")
    text = text if isinstance(text, str) else ""
    if body.get("message_format") == "html":
        text = html_to_markdown(text)
    if text.startswith("/me "):
        text = f"_{text[4:]}_"
    return text


_MICROS_SUFFIX = re.compile(r"(.+?)\s+(\d{1,6})")


def parse_timestamp(value: Any) -> float | None:
    """HipChat time -> float Unix seconds, keeping sub-second precision.

    Forms seen: `2017-06-26T15:21:44Z 123456` (the microseconds after a space),
    ISO 8601 with a fraction and/or an offset, and plain epoch seconds. A time without
    an offset is UTC, which is what HipChat Server stored.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    micros = None
    suffix = _MICROS_SUFFIX.fullmatch(text)
    if suffix:
        text, micros = suffix.group(1), int(suffix.group(2))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if micros is not None and moment.microsecond == 0:
        moment = moment.replace(microsecond=micros)
    return moment.timestamp()
