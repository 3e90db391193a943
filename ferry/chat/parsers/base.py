"""The contract between an export parser and the import operation that runs it.

A parser reads one export (a file or a folder) and reports what it finds to a
`RecordSink` as staging records shaped like Rocket.Chat's own import records
(IImportUser, IImportChannel and IImportMessage). It never touches storage, HTTP or
the network: fetching the file and storing the records are the caller's business.

Record shapes (plain dicts, JSON-serialisable; times are float Unix seconds so that
Slack's microsecond ordering survives):

user     {"importIds": [str, ...], "username": str|None, "name": str|None,
          "emails": [str, ...], "type": "user"|"bot", "deleted": bool,
          "roles": [str, ...], "utcOffset": float|None, "avatarUrl": str|None,
          "statusText": str|None, "bio": str|None}
channel  {"importIds": [str, ...], "name": str|None, "t": "c"|"p"|"d",
          "users": [user importId, ...], "u": {"_id": creator importId}|None,
          "topic": str|None, "description": str|None, "ts": float|None,
          "archived": bool}
message  {"_id": str (stable across re-imports), "rid": channel importId,
          "u": {"_id": user importId}, "msg": str, "ts": float,
          optional: "t", "tmid", "tcount", "tlm", "replies", "reactions",
          "editedAt", "editedBy", "mentions", "channels", "attachments", "bot",
          "alias", "emoji", "pinned", "groupable", "_hidden", "_importFile"}
_importFile {"downloadUrl": str, "id": str, "size": int|None, "name": str|None,
             "external": bool, "source": str}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

Record = dict[str, Any]


class ImportFileError(Exception):
    """The export cannot be read; `message` is shown to the admin on the operation record."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class RecordSink(Protocol):
    """Where a parser reports what it found. Implementations batch their own writes."""

    def add_user(self, user: Record) -> None: ...

    def add_channel(self, channel: Record) -> None: ...

    def add_message(self, message: Record) -> None: ...

    def add_contact(self, contact: Record) -> None:
        """An omnichannel contact (Rocket.Chat's `contacts.csv`)."""
        ...

    def warn(self, message: str) -> None:
        """Something was skipped or repaired; the admin sees these after prepare."""
        ...


@dataclass
class PrepareOptions:
    """Knobs a parser may honour; every field has the behaviour Rocket.Chat defaults to."""

    # Slack mpims with at most this many members become DMs, larger ones private groups.
    direct_message_max_users: int = 1
    # HipChat .tar.gz.aes exports are decrypted with this password when given.
    password: str | None = None
    # Resolve a username to an existing workspace user's import id (CSV messages whose
    # author is absent from users.csv); None when there is no such user.
    existing_user: Callable[[str], str | None] | None = None
    # Called with 0..100 as the parser advances through the export.
    on_progress: Callable[[float], None] | None = None
    limits: ArchiveLimits = field(default_factory=lambda: ArchiveLimits())


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds that stop hostile archives from exhausting memory or disk."""

    max_members: int = 200_000
    max_member_size: int = 4 * 1024**3
    max_total_size: int = 64 * 1024**3
    max_compression_ratio: int = 200
    max_json_value_bytes: int = 64 * 1024**2


class Importer(Protocol):
    """One export format, keyed as Rocket.Chat keys it (`csv`, `slack`, ...)."""

    key: str
    name: str

    def prepare(self, source: Path, sink: RecordSink, options: PrepareOptions) -> None:
        """Read `source` and report every record to `sink`.

        Raises:
            ImportFileError: the export is unreadable or malformed beyond repair.
        """
        ...
