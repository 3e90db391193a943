"""Slack's workspace export zip, mapped as Rocket.Chat's Slack importer maps it, without
the data that importer loses (the comments say where).

Layout, at the root or inside one top folder:
    users.json, channels.json, groups.json, mpims.json, dms.json   (JSON arrays)
    <channel, group or mpim name | DM id>/YYYY-MM-DD.json           (day files)

Everything is streamed: each JSON array is parsed item by item with ijson, so neither a
large users.json nor a busy channel is ever held in memory.

Edits (`message_changed`), deletions (`message_deleted`) and pins (`pinned_item`) refer
to earlier messages that may live in earlier day files. Before a channel's messages are
reported, its day files are scanned for those words (a byte search, cheap next to JSON
parsing) and only the files that contain them are parsed to collect the events; the
events are then applied as the original messages go by (see slack_messages).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ferry.chat.parsers.archive import (
    CappedWarnings,
    Member,
    ZipArchive,
    open_zip,
    report_progress,
)
from ferry.chat.parsers.base import ImportFileError, PrepareOptions, Record, RecordSink
from ferry.chat.parsers.json_arrays import JSON_ERRORS, iter_json_array
from ferry.chat.parsers.slack_messages import Channel, MessageRecords
from ferry.chat.parsers.slack_text import SLACKBOT, as_number, text_value, user_import_id
from ferry.kernel.rocketchat import GENERAL_ROOM_ID
from ferry.kernel.statuses import RoomType

NO_RECORDS = "No valid record found in the import file."
_ROOT_FILES = ("users.json", "channels.json", "groups.json", "mpims.json", "dms.json")
_CHANNEL_FILES = ("channels.json", "groups.json", "mpims.json", "dms.json")
_EVENT_WORDS = (b'"message_changed"', b'"message_deleted"', b'"pinned_item"')
_KIND_BY_FILE = {
    "channels.json": RoomType.CHANNEL,
    "groups.json": RoomType.PRIVATE_GROUP,
    "dms.json": RoomType.DIRECT,
}


class _SlackRun:
    def __init__(self, archive: ZipArchive, sink: RecordSink, options: PrepareOptions):
        self.archive = archive
        self.sink = sink
        self.options = options
        self.usernames: dict[str, str] = {}
        self.channel_names: dict[str, str] = {}
        self.folders: dict[str, str] = {}
        self.channel_ids: set[str] = set()
        self.records = 0
        self.messages = MessageRecords(sink, self.usernames, self.channel_names)
        self.done = 0
        self.total = 0

    # -- orchestration --------------------------------------------------------------

    def run(self) -> None:
        root: dict[str, Member] = {}
        folders: dict[str, list[Member]] = {}
        for member in self.archive.members:
            parts = member.parts
            if len(parts) == 1 and parts[0].lower() in _ROOT_FILES:
                root[parts[0].lower()] = member
            elif len(parts) == 2 and parts[1].lower().endswith(".json"):
                folders.setdefault(parts[0], []).append(member)
        if "users.json" not in root and "channels.json" not in root:
            raise ImportFileError(
                "This is not a Slack export: the archive has neither users.json nor channels.json."
            )
        self.total = len(root) + sum(len(files) for files in folders.values())
        if "users.json" in root:
            self._read_root(root["users.json"], self._user)
        for name in _CHANNEL_FILES:
            if name in root:
                self._read_root(root[name], lambda item, kind=name: self._channel(item, kind))
        for folder in sorted(folders):
            self._folder(folder, sorted(folders[folder], key=lambda m: m.path))
        self.messages.summarise()
        if self.records + self.messages.records == 0:
            raise ImportFileError(NO_RECORDS)

    def _progress(self) -> None:
        self.done += 1
        report_progress(self.options.on_progress, self.done, self.total)

    def _read_root(self, member: Member, handle) -> None:
        try:
            with self.archive.open(member) as stream:
                for item in iter_json_array(stream, member.name, self.options.limits):
                    handle(item)
        except JSON_ERRORS as exc:
            raise ImportFileError(
                f"{member.name} is not a valid Slack export file: {exc}."
            ) from exc
        self._progress()

    # -- users and channels -------------------------------------------------------------

    def _user(self, item: Any) -> None:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            self.sink.warn("users.json: an entry without an id was skipped.")
            return
        slack_id = item["id"]
        if slack_id == SLACKBOT:
            return  # Slackbot's messages belong to the server's own bot, which always exists.
        profile = item.get("profile") if isinstance(item.get("profile"), dict) else {}
        username = item.get("name") or None
        if username:
            self.usernames[slack_id] = username
        bot = bool(item.get("is_bot"))
        offset = as_number(item.get("tz_offset"))
        email = profile.get("email")
        self.records += 1
        self.sink.add_user(
            {
                "importIds": [slack_id],
                "username": username,
                "name": profile.get("real_name") or item.get("real_name") or None,
                "emails": [email.strip()] if isinstance(email, str) and email.strip() else [],
                "type": "bot" if bot else "user",
                "deleted": bool(item.get("deleted")),
                "roles": ["bot"] if bot else [],
                "utcOffset": offset / 3600 if offset is not None else None,
                "avatarUrl": profile.get("image_original") or profile.get("image_512") or None,
                "statusText": profile.get("status_text") or None,
                "bio": profile.get("title") or None,
            }
        )

    def _channel(self, item: Any, source: str) -> None:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            self.sink.warn(f"{source}: an entry without an id was skipped.")
            return
        channel_id = item["id"]
        if channel_id in self.channel_ids:
            self.sink.warn(
                f"{source}: conversation {channel_id} is listed twice; the first entry is kept."
            )
            return
        self.channel_ids.add(channel_id)
        members = [user_import_id(m) for m in item.get("members") or [] if isinstance(m, str)]
        kind = _KIND_BY_FILE.get(source)
        if kind is None:  # mpims: Rocket.Chat's DirectMesssage_maxUsers rule
            few = len(members) <= self.options.direct_message_max_users
            kind = RoomType.DIRECT if few else RoomType.PRIVATE_GROUP
        name = item.get("name") if isinstance(item.get("name"), str) and item.get("name") else None
        if name:
            self.channel_names[channel_id] = name
            self.folders.setdefault(name, channel_id)
        self.folders.setdefault(channel_id, channel_id)
        creator = item.get("creator")
        record: Record = {
            "importIds": [channel_id],
            "name": name if kind != RoomType.DIRECT else None,
            "t": kind,
            "users": list(dict.fromkeys(members)),
            # A channel whose creator is gone is still a channel; Rocket.Chat dropped these.
            "u": {"_id": user_import_id(creator)} if isinstance(creator, str) and creator else None,
            "topic": text_value(item.get("topic")),
            "description": text_value(item.get("purpose")),
            "ts": as_number(item.get("created")),
            "archived": bool(item.get("is_archived")),
        }
        if item.get("is_general"):
            record["_id"] = GENERAL_ROOM_ID  # Rocket.Chat merges it into the server's #general
        self.records += 1
        self.sink.add_channel(record)

    # -- day files -----------------------------------------------------------------------

    def _folder(self, folder: str, files: list[Member]) -> None:
        channel_id = self.folders.get(folder)
        if channel_id is None:
            self.sink.warn(
                f"Folder {folder!r} matches no conversation in channels.json, groups.json, "
                f"mpims.json or dms.json; its {len(files)} day file(s) were not imported."
            )
            for _ in files:
                self._progress()
            return
        channel = Channel(channel_id, folder)
        for member in files:
            if self._mentions_events(member):
                self._collect_events(channel, member)
        for member in files:
            self._day_file(channel, member)
            self._progress()
        self.messages.finish(channel)

    def _mentions_events(self, member: Member) -> bool:
        overlap = max(len(word) for word in _EVENT_WORDS)
        tail = b""
        with self.archive.open(member) as stream:
            while chunk := stream.read(128 * 1024):
                window = tail + chunk
                if any(word in window for word in _EVENT_WORDS):
                    return True
                tail = window[-overlap:]
        return False

    def _collect_events(self, channel: Channel, member: Member) -> None:
        try:
            with self.archive.open(member) as stream:
                for item in iter_json_array(stream, member.name, self.options.limits):
                    if isinstance(item, dict):
                        channel.record_event(item)
        except JSON_ERRORS:
            pass  # the message pass reads this file again and reports the problem

    def _day_file(self, channel: Channel, member: Member) -> None:
        warn = CappedWarnings(self.sink.warn, member.name)
        position = 0
        try:
            with self.archive.open(member) as stream:
                for position, item in enumerate(
                    iter_json_array(stream, member.name, self.options.limits), 1
                ):
                    self.messages.message(channel, item, f"{member.name} message {position}", warn)
        except JSON_ERRORS as exc:
            self.sink.warn(
                f"{member.name}: not a valid JSON array of messages after {position} message(s) "
                f"({exc}); the rest of this file was skipped."
            )
        warn.close()


class SlackImporter:
    key = "slack"
    name = "Slack"

    def prepare(self, source: Path, sink: RecordSink, options: PrepareOptions) -> None:
        with open_zip(source, options.limits, sink.warn, _ROOT_FILES) as archive:
            _SlackRun(archive, sink, options).run()
