"""A HipChat export with every record kind, and builders of tar and encrypted archives."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ferry.chat.parsers.base import PrepareOptions
from ferry.chat.parsers.hipchat import HipChatImporter
from ferry.chat.parsers.hipchat_bytes import evp_bytes_to_key
from tests.support.importers import RecordingSink


def prepare(path: Path, **options) -> RecordingSink:
    sink = RecordingSink()
    HipChatImporter().prepare(path, sink, PrepareOptions(**options))
    return sink


def add(archive: tarfile.TarFile, name: str, content, **fields) -> None:
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data))


def make_tar(path: Path, files: dict, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as archive:
        for name, content in files.items():
            add(archive, name, content)
    return path


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


AVATAR = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk\n"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


USERS = [
    {
        "User": {
            "id": 1,
            "mention_name": "alice",
            "name": "Alice A",
            "email": "alice@example.com",
            "title": "CTO",
            "is_deleted": False,
            "avatar": AVATAR,
        }
    },
    {
        "User": {
            "id": 2,
            "mention_name": "bob",
            "name": "Bob B",
            "email": None,
            "title": "",
            "is_deleted": True,
            "avatar": None,
        }
    },
    {"User": {"id": 10, "mention_name": "carol", "name": "Carol", "email": "carol@example.com"}},
]


ROOMS = [
    {
        "Room": {
            "id": 7,
            "name": "Ops Room",
            "owner": 1,
            "members": [],
            "participants": [1, 2],
            "privacy": "public",
            "topic": "deploys",
            "created": "2016-06-13T20:47:52+00:00",
            "is_archived": False,
        }
    },
    {
        "Room": {
            "id": 8,
            "name": "secret",
            "owner": {"id": 2},
            "members": [2, 10],
            "privacy": "private",
            "topic": "",
            "created": "2016-06-14T00:00:00Z 250000",
            "is_archived": True,
        }
    },
]


ROOM_7 = [
    {
        "UserMessage": {
            "id": "m1",
            "sender": {"id": 1, "mention_name": "alice"},
            "message": "hello @bob",
            "timestamp": "2017-06-26T15:21:44Z 123456",
        }
    },
    {
        "UserMessage": {
            "id": "m2",
            "sender": {"id": 2},
            "message": "/me waves",
            "timestamp": "2017-06-26T17:21:45.5+02:00",
        }
    },
    {
        "UserMessage": {
            "id": "m3",
            "sender": {"id": 1},
            "message": "the logs",
            "timestamp": "2017-06-26T15:22:00Z 000001",
            "attachment": {
                "url": "https://hipchat.example/files/1/7/logs.txt",
                "name": "logs.txt",
                "size": 2048,
            },
        }
    },
    {
        "UserMessage": {
            "id": "m4",
            "sender": {"id": 1},
            "message": "",
            "timestamp": "2017-06-26T15:23:00Z",
            "attachment": {"url": "https://hipchat.example/files/1/7/x", "size": 5},
        }
    },
    {
        "NotificationMessage": {
            "id": "n1",
            "sender": "JIRA",
            "message_format": "html",
            "message": "<b>PROJ-1</b> moved by <a href='https://j/u'>@john_doe</a>"
            "<br><img src='https://j/i.png' alt='chart'>",
            "timestamp": "2017-06-26T15:24:00Z 5",
        }
    },
    {
        "NotificationMessage": {
            "id": "n2",
            "sender": "CI",
            "message_format": "text",
            "message": "build <b>not html</b>",
            "timestamp": "2017-06-26T15:25:00Z",
        }
    },
    {
        "TopicRoomMessage": {
            "id": "t1",
            "sender": {"id": 1},
            "message": "deploy freeze",
            "timestamp": "2017-06-26T15:26:00Z",
        }
    },
    {"ArchiveRoomMessage": {"id": "a1", "sender": {"id": 1}, "timestamp": "2017-06-26T15:27:00Z"}},
    {"GuestAccessMessage": {"id": "g1", "sender": {"id": 1}, "timestamp": "2017-06-26T15:28:00Z"}},
    {"PollMessage": {"id": "p1"}},
    {"PollMessage": {"id": "p2"}},
    {"UserMessage": {"id": "bad1", "sender": {"id": 1}, "message": "x", "timestamp": "yesterday"}},
]


DM = {
    "id": "d1",
    "sender": {"id": 10},
    "receiver": {"id": 2},
    "message": "psst",
    "timestamp": "2017-06-27T09:00:00Z 42",
}


DM2 = {
    "id": "d2",
    "sender": {"id": 2},
    "receiver": {"id": 10},
    "message": "yes?",
    "timestamp": "2017-06-27T09:00:01Z",
    "attachment": {"url": "https://hipchat.example/files/2/cat.png", "name": "cat.png", "size": 99},
}


def full_export() -> dict:
    return {
        "metadata.json": {"version": 1},
        "emoticons.json": [],
        "users.json": USERS,
        "rooms.json": ROOMS,
        "rooms/7/history.json": ROOM_7,
        "rooms/7/files/logs.txt": b"not json at all",
        "users/10/history.json": [{"PrivateUserMessage": DM}, {"PrivateUserMessage": DM2}],
        "users/2/history.json": [{"PrivateUserMessage": DM2}, {"PrivateUserMessage": DM}],
    }


def hostile(tmp_path: Path, build) -> Path:
    path = tmp_path / "hostile.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        add(archive, "users.json", USERS[:1])
        build(archive)
    return path


def openssl_encrypt(plain: bytes, password: str, digest: str, salt: bytes = b"NaCl4you") -> bytes:
    key, iv = evp_bytes_to_key(password.encode(), salt, digest)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    body = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
    return b"Salted__" + salt + body
