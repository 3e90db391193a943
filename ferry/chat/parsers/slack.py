"""Slack's workspace export zip (rocketchat-import.md §6.3, with the fixes of §10).

Layout, at the root or inside one top folder:
    users.json, channels.json, groups.json, mpims.json, dms.json   (JSON arrays)
    <channel, group or mpim name | DM id>/YYYY-MM-DD.json           (day files)

Everything is streamed: each JSON array is parsed item by item with ijson, so neither a
large users.json nor a busy channel is ever held in memory.

Edits (`message_changed`), deletions (`message_deleted`) and pins (`pinned_item`) refer
to earlier messages that may live in earlier day files. Before a channel's messages are
reported, its day files are scanned for those words (a byte search, cheap next to JSON
parsing) and only the files that contain them are parsed to collect the events; the
events are then applied as the original messages go by.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
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

SLACKBOT = "USLACKBOT"
ROCKET_CAT = "rocket.cat"
NO_RECORDS = "No valid record found in the import file."
_ROOT_FILES = ("users.json", "channels.json", "groups.json", "mpims.json", "dms.json")
_CHANNEL_FILES = ("channels.json", "groups.json", "mpims.json", "dms.json")

_JOIN = {"channel_join", "group_join"}
_LEAVE = {"channel_leave", "group_leave"}
_TOPIC = {"channel_topic", "group_topic"}
_PURPOSE = {"channel_purpose", "group_purpose"}
_RENAME = {"channel_name", "group_name"}
_BROADCAST = {"thread_broadcast", "reply_broadcast"}
_BOT = {"bot_message", "slackbot_response"}
# Events about the workspace rather than conversation; Rocket.Chat drops them too.
_DROPPED = {
    "bot_add",
    "bot_remove",
    "bot_enable",
    "bot_disable",
    "channel_archive",
    "channel_unarchive",
    "group_archive",
    "group_unarchive",
    "unpinned_item",
    "file_mention",
    "message_replied",
    "reminder_add",
    "reminder_delete",
}
_EVENT_WORDS = (b'"message_changed"', b'"message_deleted"', b'"pinned_item"')
# Slack names some emoji differently from Rocket.Chat's emoji set.
_EMOJI_RENAMES = {"simple_smile": "smile", "memo": "pencil", "piggy": "pig", "uk": "gb"}
_EMOJI_IN_TEXT = re.compile(r":(" + "|".join(_EMOJI_RENAMES) + r"):")
_MARKUP = re.compile(r"<([^<>\n]+)>|&(lt|gt|amp);")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&"}


def user_import_id(slack_id: str) -> str:
    return ROCKET_CAT if slack_id == SLACKBOT else slack_id


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _emoji_name(name: str) -> str:
    return _EMOJI_RENAMES.get(name, name)


def convert_text(text: str, channel_names: dict[str, str]) -> tuple[str, list[str], list[str]]:
    """Slack mrkdwn to Rocket.Chat markdown: (text, mentioned user import ids, channel names)."""
    mentions: list[str] = []
    channels: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(2):
            return _ENTITIES[match.group(2)]
        target, _, label = match.group(1).partition("|")
        label = _unescape(label)
        if target.startswith("@"):
            mentioned = user_import_id(target[1:])
            if mentioned not in mentions:
                mentions.append(mentioned)
            return f"@{mentioned}"
        if target.startswith("#"):
            name = label or channel_names.get(target[1:], target[1:])
            if name not in channels:
                channels.append(name)
            return f"#{name}"
        if target.startswith("!"):
            command = target[1:].split("^", 1)[0]
            if command == "here":
                return "@here"
            if command in ("channel", "everyone"):
                return "@all"
            return label or command
        url = _unescape(target)
        return f"[{label}]({url})" if label and label != url else url

    converted = _MARKUP.sub(replace, text)
    converted = _EMOJI_IN_TEXT.sub(lambda m: f":{_EMOJI_RENAMES[m.group(1)]}:", converted)
    return converted, mentions, channels


def _ts_text(value: Any) -> str | None:
    """Slack's `ts` as the exact string Slack wrote, which is also what ids are built from."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return None
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.6f}"
    return None


def _number(value: Any) -> float | None:
    """Slack writes `created`, `tz_offset` and friends as numbers or as strings."""
    # Most messages have no reply_count; a raised and caught TypeError for each one
    # was 6% of a Slack prepare.
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text_value(holder: Any) -> str | None:
    if isinstance(holder, dict):
        holder = holder.get("value")
    return holder if isinstance(holder, str) and holder else None


@dataclass
class _Thread:
    """Replies seen for one thread, to rebuild a parent that is not in the export."""

    parent_user: str | None
    count: int = 0
    users: list[str] = field(default_factory=list)
    latest: str = "0"


@dataclass
class _Channel:
    id: str
    folder: str
    threads: dict[str, _Thread] = field(default_factory=dict)
    parents: set[str] = field(default_factory=set)
    edits: dict[str, tuple[dict, str | None]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    pinned: set[str] = field(default_factory=set)

    def message_id(self, ts_text: str) -> str:
        return f"slack-{self.id}-{ts_text.replace('.', '-')}"


def _pinned_target(event: dict) -> str | None:
    """The ts of the message a `pinned_item` event pins, wherever this export put it."""
    item = event.get("item")
    if isinstance(item, dict):
        found = _ts_text(item.get("ts"))
        message = item.get("message")
        if found is None and isinstance(message, dict):
            found = _ts_text(message.get("ts"))
        if found:
            return found
    for attachment in event.get("attachments") or []:
        if isinstance(attachment, dict) and _ts_text(attachment.get("ts")):
            return _ts_text(attachment.get("ts"))
    return None


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
        self.dropped: Counter[str] = Counter()
        self.files_without_url = 0
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
        self._summarise()
        if self.records == 0:
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

    def _summarise(self) -> None:
        if self.dropped:
            listed = ", ".join(f"{name} ({count})" for name, count in sorted(self.dropped.items()))
            self.sink.warn(f"Slack events that are not messages were not imported: {listed}.")
        if self.files_without_url:
            self.sink.warn(
                f"{self.files_without_url} file(s) have no download URL in the export "
                "(external or deleted files) and were not imported."
            )

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
        offset = _number(item.get("tz_offset"))
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
        kind = {"channels.json": "c", "groups.json": "p", "dms.json": "d"}.get(source)
        if kind is None:  # mpims: Rocket.Chat's DirectMesssage_maxUsers rule
            kind = "d" if len(members) <= self.options.direct_message_max_users else "p"
        name = item.get("name") if isinstance(item.get("name"), str) and item.get("name") else None
        if name:
            self.channel_names[channel_id] = name
            self.folders.setdefault(name, channel_id)
        self.folders.setdefault(channel_id, channel_id)
        creator = item.get("creator")
        record: Record = {
            "importIds": [channel_id],
            "name": name if kind != "d" else None,
            "t": kind,
            "users": list(dict.fromkeys(members)),
            # A channel whose creator is gone is still a channel; Rocket.Chat dropped these.
            "u": {"_id": user_import_id(creator)} if isinstance(creator, str) and creator else None,
            "topic": _text_value(item.get("topic")),
            "description": _text_value(item.get("purpose")),
            "ts": _number(item.get("created")),
            "archived": bool(item.get("is_archived")),
        }
        if item.get("is_general"):
            record["_id"] = "general"  # Rocket.Chat merges it into the server's #general
        self.records += 1
        self.sink.add_channel(record)

    # -- messages -------------------------------------------------------------------------

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
        channel = _Channel(channel_id, folder)
        for member in files:
            if self._mentions_events(member):
                self._collect_events(channel, member)
        for member in files:
            self._day_file(channel, member)
            self._progress()
        self._finish(channel)

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

    def _collect_events(self, channel: _Channel, member: Member) -> None:
        try:
            with self.archive.open(member) as stream:
                for item in iter_json_array(stream, member.name, self.options.limits):
                    if isinstance(item, dict):
                        self._collect_event(channel, item)
        except JSON_ERRORS:
            pass  # the message pass reads this file again and reports the problem

    @staticmethod
    def _collect_event(channel: _Channel, item: dict) -> None:
        subtype = item.get("subtype")
        if subtype == "message_changed" and isinstance(item.get("message"), dict):
            original = _ts_text(item["message"].get("ts"))
            if original:
                channel.edits[original] = (item["message"], _ts_text(item.get("ts")))
        elif subtype == "message_deleted":
            deleted = _ts_text(item.get("deleted_ts"))
            if deleted:
                channel.deleted.add(deleted)
        elif subtype == "pinned_item":
            pinned = _pinned_target(item)
            if pinned:
                channel.pinned.add(pinned)

    def _day_file(self, channel: _Channel, member: Member) -> None:
        warn = CappedWarnings(self.sink.warn, member.name)
        position = 0
        try:
            with self.archive.open(member) as stream:
                for position, item in enumerate(
                    iter_json_array(stream, member.name, self.options.limits), 1
                ):
                    self._message(channel, item, f"{member.name} message {position}", warn)
        except JSON_ERRORS as exc:
            self.sink.warn(
                f"{member.name}: not a valid JSON array of messages after {position} message(s) "
                f"({exc}); the rest of this file was skipped."
            )
        warn.close()

    def _message(self, channel: _Channel, item: Any, where: str, warn: CappedWarnings) -> None:
        if not isinstance(item, dict):
            warn(f"{where} is not a JSON object; skipped.")
            return
        ts_text = _ts_text(item.get("ts"))
        if ts_text is None:
            warn(f"{where} has no valid ts; skipped.")
            return
        subtype = item.get("subtype")
        if subtype in ("message_changed", "message_deleted"):
            return  # applied to their originals
        if ts_text in channel.deleted:
            return  # a thread placeholder stands in for it if it had replies
        edit = channel.edits.pop(ts_text, None)
        if edit is not None:
            item = self._edited(item, *edit)
        self._emit(channel, item, ts_text)

    @staticmethod
    def _edited(original: dict, new: dict, edited_at: str | None) -> dict:
        merged = dict(original)
        for key in ("text", "attachments", "files", "edited"):
            if key in new:
                merged[key] = new[key]
        if "edited" not in new and edited_at:
            merged["edited"] = {"user": new.get("user") or original.get("user"), "ts": edited_at}
        return merged

    def _finish(self, channel: _Channel) -> None:
        orphans = [ts for ts in channel.edits if ts not in channel.deleted]
        for ts_text in orphans:
            # The original is not in the export; its last known version is the message.
            self._emit(
                channel, self._edited(channel.edits[ts_text][0], *channel.edits[ts_text]), ts_text
            )
        if orphans:
            self.sink.warn(
                f"{channel.folder}: {len(orphans)} edit(s) refer to messages missing from the "
                "export; the edited text was imported as the message."
            )
        missing = [ts for ts in channel.threads if ts not in channel.parents]
        for ts_text in missing:
            thread = channel.threads[ts_text]
            self._add_message(
                {
                    "_id": channel.message_id(ts_text),
                    "rid": channel.id,
                    "u": {
                        "_id": user_import_id(thread.parent_user)
                        if thread.parent_user
                        else ROCKET_CAT
                    },
                    "msg": "",
                    "t": "rm",
                    "ts": float(ts_text),
                    "groupable": False,
                    "tcount": thread.count,
                    "replies": thread.users,
                    "tlm": float(thread.latest),
                }
            )
        if missing:
            self.sink.warn(
                f"{channel.folder}: {len(missing)} thread(s) start with a message that is not in "
                "the export (deleted); a 'message removed' placeholder keeps their replies."
            )

    def _add_message(self, record: Record) -> None:
        self.records += 1
        self.sink.add_message(record)

    def _emit(self, channel: _Channel, item: dict, ts_text: str) -> None:
        subtype = item.get("subtype")
        if subtype in _DROPPED:
            self.dropped[subtype] += 1
            return
        author = (
            item.get("user") if isinstance(item.get("user"), str) and item.get("user") else None
        )
        author_id = user_import_id(author) if author else ROCKET_CAT
        record: Record = {
            "_id": channel.message_id(ts_text),
            "rid": channel.id,
            "u": {"_id": author_id},
            "msg": "",
            "ts": float(ts_text),
        }
        self._content(channel, item, subtype, author, record)
        self._thread(channel, item, ts_text, author_id, record)
        if isinstance(item.get("edited"), dict):
            edited = item["edited"]
            if _number(edited.get("ts")) is not None:
                record["editedAt"] = _number(edited.get("ts"))
            if isinstance(edited.get("user"), str):
                record["editedBy"] = user_import_id(edited["user"])
        reactions = self._reactions(item.get("reactions"))
        if reactions:
            record["reactions"] = reactions
        pinned_to = item.get("pinned_to")
        if ts_text in channel.pinned or (isinstance(pinned_to, list) and channel.id in pinned_to):
            record["pinned"] = True
        files = self._files(item, subtype, record)
        if files and subtype == "file_share" and isinstance(item.get("file"), dict):
            # Old exports put "X uploaded a file: <token URL>" in the text; the file
            # message replaces it, and only the uploader's comment is worth keeping.
            comment = item["file"].get("initial_comment")
            text = comment.get("comment") if isinstance(comment, dict) else ""
            record["msg"] = convert_text(text or "", self.channel_names)[0]
        # A message that only carried files would show as an empty bubble; its file
        # messages stand for it, unless something (a thread, a pin) points at it.
        bare = not record["msg"] and not any(
            key in record for key in ("t", "attachments", "reactions", "tcount", "pinned")
        )
        if not (files and bare and ts_text not in channel.parents):
            self._add_message(record)
        for file_record in files:
            self._add_message(file_record)

    def _content(
        self, channel: _Channel, item: dict, subtype: Any, author: str | None, record: Record
    ) -> None:
        if subtype in _JOIN or subtype in _LEAVE:
            record["t"] = "uj" if subtype in _JOIN else "ul"
            record["msg"] = self.usernames.get(author or "", author or "")
            record["groupable"] = False
            return
        for kinds, message_type, key in (
            (_TOPIC, "room_changed_topic", "topic"),
            (_PURPOSE, "room_changed_description", "purpose"),
            (_RENAME, "r", "name"),
        ):
            if subtype in kinds:
                value = item.get(key)
                record["t"] = message_type
                record["msg"] = (
                    convert_text(value, self.channel_names)[0] if isinstance(value, str) else ""
                )
                record["groupable"] = False
                return
        if subtype == "tombstone":
            record["t"] = "rm"
            record["groupable"] = False
            return
        text = item.get("text") if isinstance(item.get("text"), str) else ""
        if subtype == "file_comment" and isinstance(item.get("comment"), dict):
            text = item["comment"].get("comment") or text
        if subtype == "pinned_item":
            record["t"] = "message_pinned"
            record["groupable"] = False
            text = ""
        msg, mentions, channels = convert_text(text, self.channel_names)
        if subtype == "me_message" and msg:
            msg = f"_{msg}_"
        record["msg"] = msg
        if mentions:
            record["mentions"] = mentions
        if channels:
            record["channels"] = channels
        if subtype in _BOT or item.get("bot_id"):
            record["bot"] = True
            profile = item.get("bot_profile") if isinstance(item.get("bot_profile"), dict) else {}
            alias = item.get("username") or profile.get("name")
            if isinstance(alias, str) and alias:
                record["alias"] = alias
            icons = item.get("icons") if isinstance(item.get("icons"), dict) else {}
            if isinstance(icons.get("emoji"), str):
                record["emoji"] = icons["emoji"]
        attachments = self._attachments(item.get("attachments"))
        if attachments:
            record["attachments"] = attachments

    def _attachments(self, attachments: Any) -> list[dict]:
        copied = []
        for attachment in attachments if isinstance(attachments, list) else []:
            if not isinstance(attachment, dict):
                continue
            attachment = dict(attachment)
            for key in ("text", "pretext", "title", "fallback"):
                if isinstance(attachment.get(key), str):
                    attachment[key] = convert_text(attachment[key], self.channel_names)[0]
            copied.append(attachment)
        return copied

    def _thread(
        self, channel: _Channel, item: dict, ts_text: str, author_id: str, record: Record
    ) -> None:
        thread_ts = _ts_text(item.get("thread_ts"))
        reply_count = int(_number(item.get("reply_count")) or 0)
        if thread_ts == ts_text or (thread_ts is None and reply_count):
            channel.parents.add(ts_text)
            if reply_count <= 0:
                return
            replies = item.get("replies") if isinstance(item.get("replies"), list) else []
            users = item.get("reply_users")
            if not isinstance(users, list):
                users = [r.get("user") for r in replies if isinstance(r, dict)]
            record["tcount"] = reply_count
            record["replies"] = list(
                dict.fromkeys(user_import_id(u) for u in users if isinstance(u, str))
            )
            # latest_reply is missing from some exports; Rocket.Chat threw and lost the day.
            latest = _number(item.get("latest_reply"))
            if latest is None:
                reply_times = [_number(r.get("ts")) for r in replies if isinstance(r, dict)]
                latest = max((t for t in reply_times if t is not None), default=None)
            if latest is not None:
                record["tlm"] = latest
        elif thread_ts is not None:
            record["tmid"] = channel.message_id(thread_ts)
            if item.get("subtype") in _BROADCAST:
                record["tshow"] = True  # also shown in the channel, as Slack does
            parent_user = item.get("parent_user_id")
            thread = channel.threads.setdefault(
                thread_ts, _Thread(parent_user if isinstance(parent_user, str) else None)
            )
            thread.count += 1
            if author_id not in thread.users:
                thread.users.append(author_id)
            if float(ts_text) > float(thread.latest):
                thread.latest = ts_text

    @staticmethod
    def _reactions(reactions: Any) -> dict[str, dict]:
        converted: dict[str, dict] = {}
        for reaction in reactions if isinstance(reactions, list) else []:
            if not isinstance(reaction, dict) or not isinstance(reaction.get("name"), str):
                continue
            key = f":{_emoji_name(reaction['name'])}:"
            entry = converted.setdefault(key, {"name": key, "users": []})
            for user in reaction.get("users") or []:
                if isinstance(user, str) and user_import_id(user) not in entry["users"]:
                    entry["users"].append(user_import_id(user))
        return converted

    def _files(self, item: dict, subtype: Any, record: Record) -> list[Record]:
        files = item.get("files")
        if not isinstance(files, list):
            files = (
                [item["file"]]
                if subtype == "file_share" and isinstance(item.get("file"), dict)
                else []
            )
        found = []
        for position, file in enumerate(files, 1):
            if not isinstance(file, dict):
                continue
            url = file.get("url_private_download")
            if not isinstance(url, str) or not url:
                self.files_without_url += 1
                continue
            size = _number(file.get("size"))
            file_record: Record = {
                "_id": f"{record['_id']}-file{position}",
                "rid": record["rid"],
                "u": dict(record["u"]),
                "msg": "",
                "ts": record["ts"],
                "_hidden": True,
                "_importFile": {
                    "downloadUrl": url,
                    "id": str(file.get("id") or ""),
                    "size": int(size) if size is not None else None,
                    "name": file.get("name") or file.get("title") or None,
                    "external": bool(file.get("is_external")),
                    "source": "slack",
                },
            }
            if "tmid" in record:
                file_record["tmid"] = record["tmid"]
            found.append(file_record)
        return found


class SlackImporter:
    key = "slack"
    name = "Slack"

    def prepare(self, source: Path, sink: RecordSink, options: PrepareOptions) -> None:
        with open_zip(source, options.limits, sink.warn, _ROOT_FILES) as archive:
            _SlackRun(archive, sink, options).run()
