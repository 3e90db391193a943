"""Slack messages as Rocket.Chat message records, one conversation at a time.

A conversation's edits (`message_changed`), deletions (`message_deleted`) and pins
(`pinned_item`) are gathered into its Channel before its messages go by, and applied
to the messages they name. Threads whose first message is missing get a placeholder,
so their replies keep a parent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ferry.chat.parsers.archive import CappedWarnings
from ferry.chat.parsers.base import Record, RecordSink
from ferry.chat.parsers.slack_text import (
    as_number,
    convert_text,
    emoji_name,
    ts_string,
    user_import_id,
)
from ferry.kernel.rocketchat import ROCKET_CAT

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


@dataclass
class _Thread:
    """Replies seen for one thread, to rebuild a parent that is not in the export."""

    parent_user: str | None
    count: int = 0
    users: list[str] = field(default_factory=list)
    latest: str = "0"


@dataclass
class Channel:
    """One conversation's folder while its day files are read."""

    id: str
    folder: str
    threads: dict[str, _Thread] = field(default_factory=dict)
    parents: set[str] = field(default_factory=set)
    edits: dict[str, tuple[dict, str | None]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    pinned: set[str] = field(default_factory=set)

    def message_id(self, ts_text: str) -> str:
        return f"slack-{self.id}-{ts_text.replace('.', '-')}"

    def record_event(self, item: dict) -> None:
        """Remember an edit, deletion or pin, to apply when the message it names goes by."""
        subtype = item.get("subtype")
        if subtype == "message_changed" and isinstance(item.get("message"), dict):
            original = ts_string(item["message"].get("ts"))
            if original:
                self.edits[original] = (item["message"], ts_string(item.get("ts")))
        elif subtype == "message_deleted":
            deleted = ts_string(item.get("deleted_ts"))
            if deleted:
                self.deleted.add(deleted)
        elif subtype == "pinned_item":
            pinned = _pinned_target(item)
            if pinned:
                self.pinned.add(pinned)


def _pinned_target(event: dict) -> str | None:
    """The ts of the message a `pinned_item` event pins, wherever this export put it."""
    item = event.get("item")
    if isinstance(item, dict):
        found = ts_string(item.get("ts"))
        message = item.get("message")
        if found is None and isinstance(message, dict):
            found = ts_string(message.get("ts"))
        if found:
            return found
    for attachment in event.get("attachments") or []:
        if isinstance(attachment, dict) and ts_string(attachment.get("ts")):
            return ts_string(attachment.get("ts"))
    return None


class MessageRecords:
    """Reports Slack messages to the sink as records, counting what it leaves out."""

    def __init__(self, sink: RecordSink, usernames: dict[str, str], channel_names: dict[str, str]):
        self.sink = sink
        # Filled by the export walk from users.json and the channel lists, before any message.
        self.usernames = usernames
        self.channel_names = channel_names
        self.records = 0
        self.dropped: Counter[str] = Counter()
        self.files_without_url = 0

    def summarise(self) -> None:
        """Warn once about everything left out of the whole export."""
        if self.dropped:
            listed = ", ".join(f"{name} ({count})" for name, count in sorted(self.dropped.items()))
            self.sink.warn(f"Slack events that are not messages were not imported: {listed}.")
        if self.files_without_url:
            self.sink.warn(
                f"{self.files_without_url} file(s) have no download URL in the export "
                "(external or deleted files) and were not imported."
            )

    def message(self, channel: Channel, item: Any, where: str, warn: CappedWarnings) -> None:
        if not isinstance(item, dict):
            warn(f"{where} is not a JSON object; skipped.")
            return
        ts_text = ts_string(item.get("ts"))
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

    def finish(self, channel: Channel) -> None:
        """After a conversation's last day file: orphaned edits and parentless threads."""
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

    def _emit(self, channel: Channel, item: dict, ts_text: str) -> None:
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
            if as_number(edited.get("ts")) is not None:
                record["editedAt"] = as_number(edited.get("ts"))
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
        self, channel: Channel, item: dict, subtype: Any, author: str | None, record: Record
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
        self, channel: Channel, item: dict, ts_text: str, author_id: str, record: Record
    ) -> None:
        thread_ts = ts_string(item.get("thread_ts"))
        reply_count = int(as_number(item.get("reply_count")) or 0)
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
            latest = as_number(item.get("latest_reply"))
            if latest is None:
                reply_times = [as_number(r.get("ts")) for r in replies if isinstance(r, dict)]
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
            key = f":{emoji_name(reaction['name'])}:"
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
            size = as_number(file.get("size"))
            file_record: Record = {
                "_id": f"{record['_id']}-file{position}",
                "rid": record["rid"],
                "u": dict(record["u"]),
                "msg": "",
                "ts": record["ts"],
                # Shown as Rocket.Chat shows it: an empty message that gets the file's
                # attachment once downloadPendingFiles has fetched it.
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
