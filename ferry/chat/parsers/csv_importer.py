"""Rocket.Chat's CSV export zip.

Layout, no header rows anywhere, every field trimmed:
    users.csv                 username, email, name
    channels.csv              name, creator, private|public, "member;member"
    <channel>/<any>.csv       username, epoch-ms, text
    directmessages/<any>.csv  username, other_username, epoch-ms, text
    contacts.csv              omnichannel contacts, with a header row (see contacts.py)

Where this differs from Rocket.Chat, on purpose:
- the files may sit inside one top folder (the usual result of zipping a folder);
- a message folder missing from channels.csv is warned about and imported as a public
  channel named after the folder, instead of its messages being dropped silently;
- a bad row (wrong column count, bad timestamp, no username) is skipped with file:line,
  the rest of the file is kept;
- channel import ids are the channel names, and message ids hash room, file and row,
  so re-importing the same zip addresses the same records.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ferry.chat.parsers.archive import (
    CappedWarnings,
    Member,
    Warn,
    ZipArchive,
    open_zip,
    report_progress,
)
from ferry.chat.parsers.base import ImportFileError, PrepareOptions, Record, RecordSink
from ferry.chat.parsers.contacts import CONTACTS_FILE, contact_records
from ferry.chat.parsers.text_lines import LineTooLong, iter_text_lines
from ferry.kernel.statuses import RoomType

DM_FOLDER = "directmessages"
_ROOT_MARKERS = ("users.csv", "channels.csv", CONTACTS_FILE, DM_FOLDER)
NO_RECORDS = "No valid record found in the import file."


def read_csv_rows(stream: BinaryIO, name: str, warn: Warn) -> Iterator[tuple[int, list[str]]]:
    """(line number, trimmed fields) for each record, streamed; blank lines are dropped.

    A syntax error the reader cannot step over (a field beyond the csv module's size
    limit, a line beyond MAX_LINE_CHARS: both bound memory) ends the file with a
    warning. A row holding a NUL byte (which the csv module accepts since Python
    3.11) is skipped with a warning.
    """
    reader = csv.reader(iter_text_lines(stream, name, warn), skipinitialspace=True)
    line = 1
    try:
        for row in reader:
            fields = [field.strip() for field in row]
            if any("\0" in field for field in fields):
                warn(f"{name}:{line}: the row holds a NUL byte and was skipped.")
            elif any(fields):
                yield line, fields
            line = reader.line_num + 1
    except (csv.Error, LineTooLong) as exc:
        warn(f"{name}:{line}: not readable as CSV ({exc}); the rest of this file was skipped.")


def _some(names: list[str], limit: int) -> str:
    return ", ".join(names[:limit]) + (" …" if len(names) > limit else "")


class _CsvRun:
    def __init__(self, archive: ZipArchive, sink: RecordSink, options: PrepareOptions):
        self.archive = archive
        self.sink = sink
        self.options = options
        self.usernames: set[str] = set()
        self.resolved: dict[str, str] = {}
        self.unknown_authors: set[str] = set()
        self.channel_ids: dict[str, str] = {}
        self.channel_ids_folded: dict[str, str] = {}
        self.implicit_channels: dict[str, set[str]] = {}
        self.direct_channels: set[str] = set()
        self.records = 0

    def run(self) -> None:
        by_role: dict[str, Member] = {}
        message_files: list[Member] = []
        ignored: list[str] = []
        for member in self.archive.members:
            parts = member.parts
            if len(parts) == 1 and parts[0].lower() in ("users.csv", "channels.csv", CONTACTS_FILE):
                by_role[parts[0].lower()] = member
            elif len(parts) >= 2 and parts[-1].lower().endswith(".csv"):
                message_files.append(member)
            else:
                ignored.append(member.name)
        if ignored:
            self.sink.warn(
                f"{len(ignored)} file(s) are not part of a CSV export and were ignored: "
                f"{_some(ignored, 5)}"
            )
        # users.csv first, so that channel members and authors resolve against it.
        steps = [
            (by_role[name], handle)
            for name, handle in (
                ("users.csv", self._users),
                ("channels.csv", self._channels),
                (CONTACTS_FILE, self._contacts),
            )
            if name in by_role
        ]
        steps += [
            (member, self._messages) for member in sorted(message_files, key=lambda m: m.path)
        ]
        for done, (member, handle) in enumerate(steps, 1):
            handle(member)
            report_progress(self.options.on_progress, done, len(steps))
        for folder, authors in self.implicit_channels.items():
            self._add_channel(
                {
                    "importIds": [folder],
                    "name": folder,
                    "t": RoomType.CHANNEL,
                    "users": sorted(authors),
                    "u": None,
                }
            )
        if self.unknown_authors:
            self.sink.warn(
                f"{len(self.unknown_authors)} username(s) used in channels or messages are neither "
                "in users.csv nor existing users; their messages and memberships will fail to "
                f"import: {_some(sorted(self.unknown_authors), 10)}"
            )
        if self.records == 0:
            raise ImportFileError(NO_RECORDS)

    def _rows(self, member: Member, warn: Warn) -> Iterator[tuple[int, list[str]]]:
        with self.archive.open(member) as stream:
            yield from read_csv_rows(stream, member.name, warn)

    def _contacts(self, member: Member) -> None:
        warn = CappedWarnings(self.sink.warn, member.name)
        for contact in contact_records(self._rows(member, warn), warn):
            self.records += 1
            self.sink.add_contact(contact)
        warn.close()

    def _users(self, member: Member) -> None:
        warn = CappedWarnings(self.sink.warn, member.name)
        for line, fields in self._rows(member, warn):
            if len(fields) != 3:
                warn.row(line, f"expected 3 columns (username, email, name), found {len(fields)}")
                continue
            username, email, name = fields
            if not username:
                warn.row(line, "no username")
                continue
            self.usernames.add(username)
            self.records += 1
            self.sink.add_user(
                {
                    "importIds": [username],
                    "username": username,
                    "name": name or None,
                    "emails": [email] if email else [],
                    "type": "user",
                    "deleted": False,
                    "roles": [],
                    "utcOffset": None,
                    "avatarUrl": None,
                    "statusText": None,
                    "bio": None,
                }
            )
        warn.close()

    def _channels(self, member: Member) -> None:
        warn = CappedWarnings(self.sink.warn, member.name)
        for line, fields in self._rows(member, warn):
            if len(fields) != 4:
                warn.row(
                    line,
                    f"expected 4 columns (name, creator, private|public, members), "
                    f"found {len(fields)}",
                )
                continue
            name, creator, visibility, members = fields
            if not name:
                warn.row(line, "no channel name")
                continue
            if name in self.channel_ids:
                warn.row(line, f"channel {name!r} is listed twice (the first row is kept)")
                continue
            self.channel_ids[name] = name
            self.channel_ids_folded.setdefault(name.lower(), name)
            users = [
                self._author(m) for m in dict.fromkeys(m.strip() for m in members.split(";")) if m
            ]
            self._add_channel(
                {
                    "importIds": [name],
                    "name": name,
                    "t": RoomType.PRIVATE_GROUP
                    if visibility.lower() == "private"
                    else RoomType.CHANNEL,
                    "users": users,
                    "u": {"_id": self._author(creator)} if creator else None,
                }
            )
        warn.close()

    def _add_channel(self, channel: Record) -> None:
        channel.setdefault("topic", None)
        channel.setdefault("description", None)
        channel.setdefault("ts", None)
        channel.setdefault("archived", False)
        self.records += 1
        self.sink.add_channel(channel)

    def _author(self, username: str) -> str:
        """The import id a username's messages attach to."""
        if username in self.usernames:
            return username
        if username not in self.resolved:
            found = self.options.existing_user(username) if self.options.existing_user else None
            if found is None:
                self.unknown_authors.add(username)
            self.resolved[username] = found or username
        return self.resolved[username]

    def _room_for_folder(self, folder: str, member: Member) -> str:
        room = self.channel_ids.get(folder) or self.channel_ids_folded.get(folder.lower())
        if room is not None:
            return room
        if folder not in self.implicit_channels:
            self.sink.warn(
                f"Folder {folder!r} has messages but is not in channels.csv; "
                f"it is imported as a public channel named {folder!r}."
            )
            self.implicit_channels[folder] = set()
        return folder

    def _messages(self, member: Member) -> None:
        folder = member.parts[0]
        direct = folder.lower() == DM_FOLDER
        columns = 4 if direct else 3
        layout = "username, other_username, ts, text" if direct else "username, ts, text"
        room = None if direct else self._room_for_folder(folder, member)
        warn = CappedWarnings(self.sink.warn, member.name)
        for line, fields in self._rows(member, warn):
            if len(fields) != columns:
                warn.row(line, f"expected {columns} columns ({layout}), found {len(fields)}")
                continue
            username = fields[0]
            raw_ts, text = fields[-2], fields[-1]
            if not username:
                warn.row(line, "no username")
                continue
            try:
                ts = int(raw_ts) / 1000
            except ValueError:
                warn.row(line, f"timestamp {raw_ts!r} is not epoch milliseconds")
                continue
            author = self._author(username)
            if direct:
                other = fields[1]
                if not other:
                    warn.row(line, "no other_username for a direct message")
                    continue
                room = self._direct_channel(username, other)
            else:
                implicit = self.implicit_channels.get(room)
                if implicit is not None:
                    implicit.add(author)
            digest = hashlib.sha256(f"{room}\0{member.path}\0{line}".encode()).hexdigest()[:24]
            self.records += 1
            self.sink.add_message(
                {"_id": f"csv-{digest}", "rid": room, "u": {"_id": author}, "msg": text, "ts": ts}
            )
        warn.close()

    def _direct_channel(self, username: str, other: str) -> str:
        room = "/".join(sorted((username, other)))
        if room not in self.direct_channels:
            self.direct_channels.add(room)
            self._add_channel(
                {
                    "importIds": [room],
                    "name": None,
                    "t": RoomType.DIRECT,
                    "users": [self._author(username), self._author(other)],
                    "u": None,
                }
            )
        return room


class CsvImporter:
    key = "csv"
    name = "CSV"

    def prepare(self, source: Path, sink: RecordSink, options: PrepareOptions) -> None:
        with open_zip(source, options.limits, sink.warn, _ROOT_MARKERS) as archive:
            _CsvRun(archive, sink, options).run()
