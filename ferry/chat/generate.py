"""Synthetic exports for benchmarks and tests: a Rocket.Chat CSV zip and a Slack zip.

    python -m ferry.chat.generate csv|slack --messages N --channels C --out PATH
        [--users U] [--seed S] [--base-url URL]

Both are written straight into the zip one entry at a time, message by message, so a
million messages take the same memory as a thousand. The same arguments always give
the same bytes: every random choice comes from a generator seeded with the seed and the
conversation, and zip entries carry a fixed date.

Layouts, as Rocket.Chat's CSV and Slack importers read them:

csv    users.csv (username,email,name), channels.csv (name,creator,private|public,
       members joined by ';'), <channel>/messages.csv (username,ts,text) and
       directmessages/messages.csv (username,other_username,ts,text); no header rows,
       ts in epoch milliseconds.
slack  users.json, channels.json, groups.json, mpims.json, dms.json and
       <channel name | DM id>/YYYY-MM-DD.json, with threads, reactions, mentions, channel
       links, edits, joins and files whose url_private_download is under --base-url
       (`<base>/files/<file id>/<name>`; `file_content(file id)` gives their bytes).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import random
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

START = 1_577_836_800  # 2020-01-01T00:00:00Z
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)
# An entry that may pass 2 GiB needs zip64 headers, decided before its size is known.
_ZIP64_AFTER_MESSAGES = 2_000_000
DIRECT_SHARE = 10  # percent of the messages that go to DMs (and Slack group DMs)

WORDS = (
    "deploy",
    "release",
    "build",
    "merge",
    "review",
    "ticket",
    "customer",
    "bug",
    "fix",
    "test",
    "staging",
    "prod",
    "coffee",
    "meeting",
    "agenda",
    "notes",
    "lunch",
    "design",
    "docs",
    "roadmap",
    "sprint",
    "demo",
    "backup",
    "latency",
    "cache",
    "queue",
    "shard",
    "index",
    "schema",
    "api",
    "token",
    "retry",
    "timeout",
)
EMOJI = ["thumbsup", "tada", "eyes", "heart", "rocket", "white_check_mark", "joy"]


@dataclass
class Summary:
    """What was written; tests compare it with what an importer reads back."""

    users: int = 0
    channels: int = 0
    private_channels: int = 0
    direct: int = 0
    messages: int = 0
    threads: int = 0
    replies: int = 0
    reactions: int = 0
    files: int = 0
    edits: int = 0
    entries: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Shared helpers


def _rng(seed: int, *parts: object) -> random.Random:
    # String seeds hash with SHA-512, the same on every run and platform.
    return random.Random(":".join(map(str, (seed, *parts))))


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _plan(messages: int, channels: int, direct: int) -> tuple[list[int], list[int]]:
    """Message counts per channel and per direct conversation, adding up to `messages`."""
    if channels <= 0:
        return [], _split(messages, direct) if direct else []
    if direct <= 0:
        return _split(messages, channels), []
    to_direct = messages * DIRECT_SHARE // 100
    return _split(messages - to_direct, channels), _split(to_direct, direct)


def _open_entry(archive: zipfile.ZipFile, name: str, summary: Summary, large: bool = False) -> IO:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    summary.entries.append(name)
    # Each write to a zip entry is a deflate call; batching them halves the run time.
    return io.BufferedWriter(archive.open(info, "w", force_zip64=large), 256 * 1024)  # type: ignore[arg-type]


def _members(rng: random.Random, users: int, most: int = 12) -> list[int]:
    count = min(users, rng.randint(2, most))
    return sorted(rng.sample(range(users), count))


def _words(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(3, 14)))


class _Clock:
    """Increasing times for one conversation, to the microsecond."""

    def __init__(self, rng: random.Random):
        self._rng = rng
        self.micros = (START + rng.randint(0, 86_400)) * 1_000_000

    def tick(self, most_seconds: int = 900) -> int:
        self.micros += self._rng.randint(1_000, most_seconds * 1_000_000)
        return self.micros


# ---------------------------------------------------------------------------
# Rocket.Chat CSV


def csv_username(index: int) -> str:
    return f"user{index:04d}"


def write_csv_export(
    path: Path, *, messages: int, channels: int, users: int = 50, seed: int = 0
) -> Summary:
    users = max(users, 2)
    direct_pairs = min(users // 2, 20)
    per_channel, per_direct = _plan(messages, channels, 1 if direct_pairs else 0)
    summary = Summary(users=users, channels=channels)
    with zipfile.ZipFile(path, "w") as archive:
        with _csv_entry(archive, "users.csv", summary) as out:
            for i in range(users):
                name = csv_username(i)
                out.writerow([name, f"{name}@example.com", f"User {i}"])
        with _csv_entry(archive, "channels.csv", summary) as out:
            for c in range(channels):
                members = [csv_username(m) for m in _members(_rng(seed, "members", c), users)]
                private = c % 4 == 1
                summary.private_channels += private
                kind = "private" if private else "public"
                out.writerow([f"channel-{c}", members[0], kind, ";".join(members)])
        for c, count in enumerate(per_channel):
            rng = _rng(seed, "channel", c)
            members = [csv_username(m) for m in _members(_rng(seed, "members", c), users)]
            name = f"channel-{c}/messages.csv"
            with _csv_entry(archive, name, summary, count > _ZIP64_AFTER_MESSAGES) as out:
                clock = _Clock(rng)
                for _ in range(count):
                    out.writerow(
                        [rng.choice(members), clock.tick() // 1000, _csv_text(rng, members)]
                    )
        if per_direct:
            _write_csv_direct(archive, summary, per_direct[0], direct_pairs, seed)
        summary.messages = messages if (per_channel or per_direct) else 0
    return summary


@contextmanager
def _csv_entry(
    archive: zipfile.ZipFile, name: str, summary: Summary, large: bool = False
) -> Iterator[Any]:
    with io.TextIOWrapper(
        _open_entry(archive, name, summary, large), encoding="utf-8", newline=""
    ) as text:
        yield csv.writer(text, lineterminator="\n")


def _write_csv_direct(
    archive: zipfile.ZipFile, summary: Summary, count: int, pairs: int, seed: int
) -> None:
    rng = _rng(seed, "direct")
    clock = _Clock(rng)
    used: set[int] = set()
    large = count > _ZIP64_AFTER_MESSAGES
    with _csv_entry(archive, "directmessages/messages.csv", summary, large) as out:
        for _ in range(count):
            pair = rng.randrange(pairs)
            used.add(pair)
            one, other = csv_username(2 * pair), csv_username(2 * pair + 1)
            if rng.random() < 0.5:
                one, other = other, one
            out.writerow([one, other, clock.tick() // 1000, _csv_text(rng, [other])])
    summary.direct = len(used)


def _csv_text(rng: random.Random, people: list[str]) -> str:
    text = _words(rng)
    roll = rng.random()
    if roll < 0.15:
        text = f"@{rng.choice(people)} {text}"
    elif roll < 0.20:
        text = f'{text}, "quoted", and more'  # needs CSV quoting
    elif roll < 0.22:
        text = f"{text}\nsecond line"
    return text


# ---------------------------------------------------------------------------
# Slack


def slack_user_id(index: int) -> str:
    return f"U{index:08d}"


def slack_channel_id(index: int, private: bool) -> str:
    return f"{'G' if private else 'C'}{index:08d}"


def file_content(file_id: str) -> bytes:
    """The bytes a generated Slack file's download URL should serve (64..4159 bytes)."""
    digest = hashlib.sha256(file_id.encode()).hexdigest()
    size = 64 + int(digest[:8], 16) % 4096
    return (digest * (size // len(digest) + 1))[:size].encode()


@dataclass
class _Conversation:
    folder: str
    id: str
    members: list[str]
    count: int
    kind: str  # channel | group | mpim | dm
    names: dict[str, str] = field(default_factory=dict)  # channel id -> name, for links


def write_slack_export(
    path: Path,
    *,
    messages: int,
    channels: int,
    users: int = 50,
    seed: int = 0,
    base_url: str = "http://127.0.0.1:8000",
) -> Summary:
    users = max(users, 3)
    base_url = base_url.rstrip("/")
    dm_count = min(users - 1, 5)
    per_channel, per_direct = _plan(messages, channels, dm_count + 1)  # +1 group DM
    summary = Summary(users=users, channels=channels, direct=len(per_direct))
    conversations: list[_Conversation] = []
    with zipfile.ZipFile(path, "w") as archive:
        _write_json(archive, "users.json", _slack_users(users, base_url), summary)
        public, private = [], []
        for c, count in enumerate(per_channel):
            is_private = c % 4 == 1
            record = _slack_channel(c, is_private, seed, users)
            (private if is_private else public).append(record)
            kind = "group" if is_private else "channel"
            conversations.append(
                _Conversation(record["name"], record["id"], record["members"], count, kind)
            )
        summary.private_channels = len(private)
        _write_json(archive, "channels.json", public, summary)
        _write_json(archive, "groups.json", private, summary)
        mpims, dms = _slack_direct(per_direct, users, conversations)
        _write_json(archive, "mpims.json", mpims, summary)
        _write_json(archive, "dms.json", dms, summary)
        names = {c["id"]: c["name"] for c in public}
        for conversation in conversations:
            conversation.names = names
            _write_slack_history(archive, conversation, seed, base_url, summary)
    return summary


def _write_json(archive: zipfile.ZipFile, name: str, value: Any, summary: Summary) -> None:
    with _open_entry(archive, name, summary) as out:
        out.write(orjson.dumps(value, option=orjson.OPT_INDENT_2))


def _slack_users(users: int, base_url: str) -> list[dict]:
    records = []
    for i in range(users):
        uid = slack_user_id(i)
        name = f"user{i:04d}"
        profile = {
            "real_name": f"User {i}",
            "display_name": name,
            "title": "engineer" if i % 3 else "",
            "status_text": "in a meeting" if i % 7 == 0 else "",
            "image_original": f"{base_url}/avatars/{uid}.png",
        }
        if i % 20 != 19:  # some workspaces hide emails; importers must cope
            profile["email"] = f"{name}@example.com"
        records.append(
            {
                "id": uid,
                "name": name,
                "real_name": f"User {i}",
                "deleted": i % 25 == 24,
                "is_bot": i == 1,
                "tz_offset": (i % 24 - 12) * 3600,
                "profile": profile,
            }
        )
    return records


def _slack_channel(index: int, private: bool, seed: int, users: int) -> dict:
    rng = _rng(seed, "members", index)
    members = [slack_user_id(m) for m in _members(rng, users)]
    created = START - 86_400 + index
    return {
        "id": slack_channel_id(index, private),
        "name": f"{'private' if private else 'channel'}-{index}",
        "created": created,
        "creator": members[0],
        "is_archived": index % 10 == 9,
        "is_general": index == 0 and not private,
        "members": members,
        "topic": {"value": f"topic {index}", "creator": members[0], "last_set": created},
        "purpose": {"value": f"purpose {index}", "creator": members[0], "last_set": created},
    }


def _slack_direct(
    counts: list[int], users: int, conversations: list[_Conversation]
) -> tuple[list[dict], list[dict]]:
    mpims, dms = [], []
    if not counts:
        return mpims, dms
    members = [slack_user_id(i) for i in range(3)]
    mpim = {
        "id": "G99999999",
        "name": "mpdm-" + "--".join(f"user{i:04d}" for i in range(3)) + "-1",
        "created": START - 86_400,
        "creator": members[0],
        "is_archived": False,
        "members": members,
        "topic": {"value": "", "creator": "", "last_set": 0},
        "purpose": {"value": "Group messaging", "creator": members[0], "last_set": 0},
    }
    mpims.append(mpim)
    conversations.append(_Conversation(mpim["name"], mpim["id"], members, counts[0], "mpim"))
    for d, count in enumerate(counts[1:]):
        pair = [slack_user_id(0), slack_user_id(d + 1)]
        dm = {"id": f"D{d:08d}", "created": START - 86_400, "members": pair}
        dms.append(dm)
        conversations.append(_Conversation(dm["id"], dm["id"], pair, count, "dm"))
    return mpims, dms


def _slack_ts(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


class _DayFiles:
    """Writes one conversation's messages into `<folder>/YYYY-MM-DD.json`, a day at a time."""

    def __init__(self, archive: zipfile.ZipFile, folder: str, summary: Summary):
        self._archive = archive
        self._folder = folder
        self._summary = summary
        self._day = -1
        self._out: IO | None = None
        self._first = True

    def add(self, message: dict) -> None:
        day = int(message["ts"].partition(".")[0]) // 86_400
        if day != self._day:
            self.close()
            self._day = day
            date = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")
            name = f"{self._folder}/{date}.json"
            self._out = _open_entry(self._archive, name, self._summary)
            self._out.write(b"[\n")
            self._first = True
        assert self._out is not None
        self._out.write((b"" if self._first else b",\n") + orjson.dumps(message))
        self._first = False
        self._summary.messages += 1

    def close(self) -> None:
        if self._out is not None:
            self._out.write(b"\n]\n")
            self._out.close()
            self._out = None


def _write_slack_history(
    archive: zipfile.ZipFile,
    conversation: _Conversation,
    seed: int,
    base_url: str,
    summary: Summary,
) -> None:
    rng = _rng(seed, "history", conversation.id)
    clock = _Clock(rng)
    days = _DayFiles(archive, conversation.folder, summary)
    left = conversation.count
    if left and conversation.kind in ("channel", "group"):
        creator = conversation.members[0]
        days.add(
            {
                "type": "message",
                "subtype": "channel_join",
                "user": creator,
                "text": f"<@{creator}> has joined the channel",
                "ts": _slack_ts(clock.tick()),
            }
        )
        left -= 1
    while left:
        replies = rng.randint(1, 4) if left > 1 and rng.random() < 0.08 else 0
        replies = min(replies, left - 1)
        for message in _slack_thread(rng, clock, conversation, replies, base_url, summary):
            days.add(message)
        left -= replies + 1
    days.close()


def _slack_thread(
    rng: random.Random,
    clock: _Clock,
    conversation: _Conversation,
    replies: int,
    base_url: str,
    summary: Summary,
) -> list[dict]:
    """A message and, when `replies` > 0, its thread; the parent already knows its replies."""
    parent = _slack_message(rng, clock.tick(), conversation, base_url, summary)
    if not replies:
        return [parent]
    summary.threads += 1
    summary.replies += replies
    thread = [parent]
    for _ in range(replies):
        reply = _slack_message(rng, clock.tick(60), conversation, base_url, summary)
        reply["thread_ts"] = parent["ts"]
        reply["parent_user_id"] = parent["user"]
        if rng.random() < 0.1:
            reply["subtype"] = "thread_broadcast"
        thread.append(reply)
    reply_users = list(dict.fromkeys(r["user"] for r in thread[1:]))
    parent.update(
        {
            "thread_ts": parent["ts"],
            "reply_count": replies,
            "reply_users_count": len(reply_users),
            "latest_reply": thread[-1]["ts"],
            "reply_users": reply_users,
            "replies": [{"user": r["user"], "ts": r["ts"]} for r in thread[1:]],
        }
    )
    return thread


def _slack_message(
    rng: random.Random, micros: int, conversation: _Conversation, base_url: str, summary: Summary
) -> dict:
    user = rng.choice(conversation.members)
    ts = _slack_ts(micros)
    text = _words(rng)
    roll = rng.random()
    if roll < 0.15:
        text = f"<@{rng.choice(conversation.members)}> {text}"
    elif roll < 0.20 and conversation.names:
        cid = rng.choice(sorted(conversation.names))
        text = f"{text} see <#{cid}|{conversation.names[cid]}>"
    elif roll < 0.23:
        text = f"{text} <https://example.com/{rng.randint(1, 999)}|the link> &amp; more"
    message: dict = {"type": "message", "user": user, "text": text, "ts": ts}
    if rng.random() < 0.02:
        message["subtype"] = "me_message"
    if rng.random() < 0.05:
        summary.edits += 1
        edited = micros + rng.randint(1, 3_600) * 1_000_000
        message["edited"] = {"user": user, "ts": _slack_ts(edited)}
    if rng.random() < 0.10:
        people = rng.sample(conversation.members, min(len(conversation.members), 3))
        names = rng.sample(EMOJI, rng.randint(1, 2))
        summary.reactions += len(names)
        message["reactions"] = [
            {"name": name, "users": people, "count": len(people)} for name in names
        ]
    if rng.random() < 0.05:
        summary.files += 1
        file_id = f"F{summary.files:09d}"
        name = f"report {summary.files}.txt"
        url = f"{base_url}/files/{file_id}/{name.replace(' ', '%20')}"
        message["files"] = [
            {
                "id": file_id,
                "name": name,
                "title": name,
                "mimetype": "text/plain",
                "filetype": "text",
                "size": len(file_content(file_id)),
                "url_private": url,
                "url_private_download": url + "?download=1",
                "is_external": False,
            }
        ]
    return message


# ---------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ferry.chat.generate", description="Write a synthetic chat export zip."
    )
    parser.add_argument("kind", choices=["csv", "slack"])
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--channels", type=int, required=True)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Slack file URLs")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.messages < 0 or args.channels < 0 or args.users < 1:
        parser.error("--messages and --channels must be >= 0, --users >= 1")
    common = {"messages": args.messages, "channels": args.channels, "users": args.users}
    if args.kind == "csv":
        summary = write_csv_export(args.out, seed=args.seed, **common)
    else:
        summary = write_slack_export(args.out, seed=args.seed, base_url=args.base_url, **common)
    report = asdict(summary)
    report["entries"] = len(summary.entries)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
