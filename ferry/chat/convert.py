"""Turn one operation's staging records into Ferry users, rooms and messages.

This is Rocket.Chat's converter pass (Importer.startImport with the User, Room and
Message converters), with the fixes of research §10: the selection also filters
messages (a message of a room left out is skipped and counted, not failed), retries
never duplicate anything, Slack's microsecond order survives, and a failed record is
recorded and counted instead of stopping the run.

API
---
    report = run_import(
        operation_id, staging=StagingArea, users=UserRepository, workspace=WorkspaceStore,
        selection=Selection.from_input(body["input"]),   # or Selection.everything()
        importing_user_id=uid,                           # creator fallback for rooms
        progress=lambda step, completed, total, errors: ...,
        should_continue=lambda: operation_still_valid,
    ) -> ImportReport

* `progress` receives Rocket.Chat's step strings (`importer_importing_users`,
  `importer_importing_channels`, `importer_importing_messages`, `importer_finishing`)
  at every step change and at most every `progress_interval` seconds in between.
  `completed` counts every staging record looked at (imported, skipped or failed);
  `total` is all staging records of the operation.
* `should_continue` is asked between batches of BATCH records. When it answers False
  the work done so far is written out (it is consistent, and a later run completes
  it) and `ImportCancelled` is raised.
* Per-record failures carry Rocket.Chat's error strings (`importer-user-missing-email-
  and-username`, `importer-channel-missing-name`, `importer-message-unknown-room`, ...),
  are written to the staging marks (`StagingArea.errors`) and counted in
  `ImportReport.errors`; the first ERROR_SAMPLES are kept in the report.
* Idempotent: users are matched by email, then username, then import id; rooms by
  import id, then DM member set, then name; messages are upserted by their stable
  `_id`. Running the same staging twice creates nothing new.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from ferry.kernel.ids import now_iso, random_id
from storage.staging import CHANNEL, DIRECT_MESSAGES_ID, MESSAGE, USER, StagingArea
from storage.users import UserRepository
from storage.workspace import WorkspaceStore

STEP_USERS = "importer_importing_users"
STEP_CHANNELS = "importer_importing_channels"
STEP_MESSAGES = "importer_importing_messages"
STEP_FINISHING = "importer_finishing"

BATCH = 1000
ERROR_SAMPLES = 50

ROCKET_CAT = "rocket.cat"

# Rocket.Chat's per-record error strings (research §4.4).
E_USER_NO_IDENTITY = "importer-user-missing-email-and-username"
E_CHANNEL_NO_NAME = "importer-channel-missing-name"
E_CHANNEL_NO_IMPORT_ID = "importer-channel-missing-import-id"
E_CHANNEL_MEMBERS = "importer-channel-missing-users"
E_CHANNEL_CREATOR = "importer-channel-invalid-creator"
E_MESSAGE_TIMESTAMP = "importer-message-invalid-timestamp"
E_MESSAGE_USER = "importer-message-unknown-user"
E_MESSAGE_ROOM = "importer-message-unknown-room"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Import ids as parsers write them after '@' or '#': never ending in punctuation, so
# "@U123." at the end of a sentence still resolves.
_REFERENCE = re.compile(r"([@#])([0-9A-Za-z]+(?:[._-][0-9A-Za-z]+)*)")
_USERNAME_CHARS = re.compile(r"[^0-9A-Za-z._-]+")
_PASSED_THROUGH = frozenset(
    {
        "t",
        "alias",
        "groupable",
        "_hidden",
        "attachments",
        "bot",
        "emoji",
        "pinned",
        "tshow",
        "tmid",
        "tcount",
        "url",
        "parseUrls",
        "drid",
    }
)


class ImportCancelled(Exception):
    """`should_continue()` said stop; what was converted so far is stored."""


@dataclass(frozen=True)
class Selection:
    """What startImport asked for: import ids of users and channels, or all of them."""

    all_users: bool = False
    users: frozenset[str] = frozenset()
    all_channels: bool = False
    channels: frozenset[str] = frozenset()

    @classmethod
    def everything(cls) -> Selection:
        return cls(all_users=True, all_channels=True)

    @classmethod
    def from_input(cls, selection: dict | None) -> Selection:
        """From startImport's `input` (`{users: {all, list}, channels: {all, list}}`).

        `all: true` wins over `list`; a missing list imports none of that kind.
        """
        selection = selection or {}
        all_users, users = _chosen(selection.get("users"), "user_id")
        all_channels, channels = _chosen(selection.get("channels"), "channel_id")
        return cls(all_users=all_users, users=users, all_channels=all_channels, channels=channels)

    def wants_user(self, import_ids: list[str]) -> bool:
        return self.all_users or bool(import_ids and import_ids[0] in self.users)

    def wants_channel(self, channel_type: str, import_ids: list[str]) -> bool:
        if self.all_channels:
            return True
        if channel_type == "d":
            return DIRECT_MESSAGES_ID in self.channels
        return bool(import_ids and import_ids[0] in self.channels)


def _chosen(part: Any, id_field: str) -> tuple[bool, frozenset[str]]:
    # Rocket.Chat < 7 sent the whole selection back: [{user_id, do_import, ...}].
    if isinstance(part, list):
        return False, frozenset(
            str(item[id_field])
            for item in part
            if isinstance(item, dict) and item.get("do_import") and item.get(id_field) is not None
        )
    part = part if isinstance(part, dict) else {}
    return bool(part.get("all")), frozenset(str(i) for i in part.get("list") or ())


@dataclass
class ImportReport:
    users_created: int = 0
    users_updated: int = 0
    users_skipped: int = 0
    rooms_created: int = 0
    rooms_updated: int = 0
    rooms_skipped: int = 0
    messages_imported: int = 0
    messages_skipped: int = 0
    errors: int = 0
    # Problems that did not stop a record, e.g. a mention of a user that was not imported.
    warnings: int = 0
    error_samples: list[dict] = field(default_factory=list)


class _Person(NamedTuple):
    id: str
    username: str
    name: str | None


class _Place(NamedTuple):
    id: str
    name: str | None


class _RecordError(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


_DAY_PREFIXES: dict[int, str] = {}


def _iso_from_micros(micros: int) -> str:
    """`2023-03-24T14:03:05.123Z` (a JavaScript Date's JSON) from Unix microseconds."""
    # Called for every message; strftime alone was a fifth of the import's time.
    days, rest = divmod(micros, 86_400_000_000)
    prefix = _DAY_PREFIXES.get(days)
    if prefix is None:
        prefix = (_EPOCH + timedelta(days=days)).strftime("%Y-%m-%dT")
        _DAY_PREFIXES[days] = prefix
    seconds, fraction = divmod(rest, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}.{fraction // 1000:03d}Z"


def _micros(value: Any) -> int | None:
    """Unix seconds (float, Slack precision) to integer microseconds; None if unusable."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if seconds != seconds or abs(seconds) > 1e11:  # NaN, or beyond year 5000
        return None
    return round(seconds * 1_000_000)


def _code(problem: Exception) -> str:
    """What a failed record's mark says: Rocket.Chat's code, or what broke in a malformed one."""
    if isinstance(problem, _RecordError):
        return problem.code
    return f"importer-invalid-record: {type(problem).__name__}: {problem}"


def _iso_or_none(value: Any) -> str | None:
    micros = _micros(value)
    return None if micros is None else _iso_from_micros(micros)


class _Run:
    """State of one run: caches of resolved ids, counters, progress throttling."""

    def __init__(
        self,
        operation_id,
        staging,
        users,
        workspace,
        selection,
        importing_user_id,
        progress,
        should_continue,
        progress_interval,
        clock,
    ):
        self.operation_id = operation_id
        self.staging: StagingArea = staging
        self.users: UserRepository = users
        self.workspace: WorkspaceStore = workspace
        self.selection: Selection = selection
        self.importing_user_id = importing_user_id
        self.on_progress = progress
        self.should_continue = should_continue or (lambda: True)
        self.interval = progress_interval
        self.clock = clock
        self.report = ImportReport()
        self.now = now_iso()
        counts = staging.counts(operation_id)
        self.total = counts["users"] + counts["channels"] + counts["messages"]
        self.completed = 0
        self.step = ""
        self.last_report = float("-inf")
        self.marks: list[tuple[str, int, str]] = []
        self.people: dict[str, _Person | None] = {}
        self.places: dict[str, _Place | None] = {}
        self.places_by_name: dict[str, _Place] = {}
        self.left_out_rooms: set[str] = set()

    # --- bookkeeping ---------------------------------------------------------

    def enter(self, step: str) -> None:
        self.step = step
        self.report_progress(force=True)

    def report_progress(self, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = self.clock()
        if force or now - self.last_report >= self.interval:
            self.last_report = now
            self.on_progress(self.step, self.completed, self.total, self.report.errors)

    def fail(self, kind: str, sequence: int, code: str) -> None:
        self.report.errors += 1
        self.marks.append((kind, sequence, code))
        if len(self.report.error_samples) < ERROR_SAMPLES:
            self.report.error_samples.append({"type": kind, "index": sequence, "error": code})

    def checkpoint(self, flush: Callable[[], None]) -> None:
        """Between batches: store the batch, report, and stop if asked to."""
        flush()
        if self.marks:
            self.staging.mark_errors(self.operation_id, self.marks)
            self.marks = []
        self.report_progress()
        if not self.should_continue():
            raise ImportCancelled("the import operation is no longer valid")

    def batches(self, kind: str) -> Iterable[list[tuple[int, dict]]]:
        batch = []
        for item in self.staging.records(self.operation_id, kind):
            batch.append(item)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    # --- lookups -------------------------------------------------------------

    def person(self, import_id: Any) -> _Person | None:
        if not isinstance(import_id, str) or not import_id:
            return None
        if import_id in self.people:
            return self.people[import_id]
        user_id = self.users.id_for_import_id(import_id)
        found = None
        if user_id is not None:
            user = self.users.get(user_id)
            found = _Person(user["_id"], user["username"], user.get("name"))
        elif import_id == ROCKET_CAT:
            found = self._rocket_cat()
        self.people[import_id] = found
        return found

    def _rocket_cat(self) -> _Person:
        # Slack's USLACKBOT and HipChat notifications are authored by rocket.cat.
        user = self.users.by_username(ROCKET_CAT)
        if user is None:
            user = {
                "_id": ROCKET_CAT,
                "username": ROCKET_CAT,
                "name": "Rocket.Cat",
                "emails": [],
                "roles": ["bot"],
                "active": True,
                "type": "bot",
                "createdAt": self.now,
                "_updatedAt": self.now,
                "importIds": [ROCKET_CAT],
                "utcOffset": 0,
                "statusText": "",
                "bio": "",
            }
            self.users.insert(user)
        return _Person(user["_id"], user["username"], user.get("name"))

    def place(self, import_id: Any) -> _Place | None:
        if not isinstance(import_id, str) or not import_id:
            return None
        if import_id not in self.places:
            room = self.workspace.room_by_import_id(import_id)
            self.places[import_id] = _Place(room["_id"], room.get("name")) if room else None
        return self.places[import_id]

    def place_by_reference(self, reference: Any) -> _Place | None:
        """A `channels` entry: an import id or a room name."""
        found = self.place(reference)
        if found is None and isinstance(reference, str):
            found = self.places_by_name.get(reference)
            if found is None:
                room = self.workspace.room_by_name(reference)
                if room is not None:
                    found = self.places_by_name[reference] = _Place(room["_id"], room.get("name"))
        return found


# ============================================================================
# users
# ============================================================================


class _UserBatch:
    """Users of one batch, written with one insert and one update."""

    def __init__(self, run: _Run):
        self.run = run
        self.new: dict[str, dict] = {}
        self.changed: dict[str, dict] = {}  # user id -> the whole updated document
        self.new_by_email: dict[str, str] = {}
        self.new_by_username: dict[str, str] = {}

    def find(self, data: dict) -> dict | None:
        users = self.run.users
        for address in _unique_emails(data)[:1]:
            key = address.casefold()
            if key in self.new_by_email:
                return self.new[self.new_by_email[key]]
            found = users.by_email(address)
            if found is not None:
                return self.changed.get(found["_id"], found)
        username = data.get("username")
        if username:
            key = username.casefold()
            if key in self.new_by_username:
                return self.new[self.new_by_username[key]]
            found = users.by_username(username)
            if found is not None:
                return self.changed.get(found["_id"], found)
        for import_id in data.get("importIds") or []:
            user_id = users.id_for_import_id(import_id)
            if user_id is not None:
                return self.new.get(user_id) or self.changed.get(user_id) or users.get(user_id)
        return None

    def username_taken(self, username: str, owner: str | None = None) -> bool:
        key = username.casefold()
        holder = self.new_by_username.get(key)
        if holder is None:
            existing = self.run.users.by_username(username)
            holder = existing["_id"] if existing else None
        return holder is not None and holder != owner

    def unique_username(self, data: dict) -> str:
        emails = data.get("emails") or []
        seed = data.get("name") or (emails[0].split("@")[0] if emails else "") or "user"
        base = _USERNAME_CHARS.sub(".", seed.strip()).strip("._-").lower() or "user"
        candidate, suffix = base, 1
        while self.username_taken(candidate):
            suffix += 1
            candidate = f"{base}{suffix}"
        return candidate

    def add(self, data: dict) -> None:
        existing = self.find(data)
        if existing is None:
            self._create(data)
        else:
            self._update(existing, data)

    def _create(self, data: dict) -> None:
        run = self.run
        username = data.get("username")
        if not username or self.username_taken(username):
            username = self.unique_username(data)
        user = {
            "_id": random_id(),
            "username": username,
            "name": data.get("name") or username,
            "emails": [{"address": a, "verified": False} for a in _unique_emails(data)],
            "roles": list(data.get("roles") or ["user"]),
            "active": not data.get("deleted"),
            "type": "bot" if data.get("type") == "bot" else "user",
            "createdAt": run.now,
            "_updatedAt": run.now,
            "importIds": list(dict.fromkeys(data.get("importIds") or [])),
            "utcOffset": data.get("utcOffset") or 0,
            "statusText": data.get("statusText") or "",
            "bio": data.get("bio") or "",
        }
        if data.get("avatarUrl"):
            user["_pendingAvatarUrl"] = data["avatarUrl"]
        self.new[user["_id"]] = user
        for address in user["emails"]:
            self.new_by_email.setdefault(address["address"].casefold(), user["_id"])
        self.new_by_username[username.casefold()] = user["_id"]
        run.report.users_created += 1

    def _update(self, user: dict, data: dict) -> None:
        run = self.run
        user = dict(user)
        # Existing roles are kept: an admin matched by email must stay an admin.
        user["roles"] = _merged(user.get("roles"), data.get("roles"))
        user["importIds"] = _merged(user.get("importIds"), data.get("importIds"))
        known = {e["address"].casefold() for e in user.get("emails") or []}
        user["emails"] = list(user.get("emails") or []) + [
            {"address": a, "verified": False}
            for a in _unique_emails(data)
            if a.casefold() not in known
        ]
        if data.get("type") in ("user", "bot"):
            user["type"] = data["type"]
        for key in ("name", "statusText", "bio", "utcOffset"):
            if data.get(key) is not None:
                user[key] = data[key]
        if data.get("avatarUrl"):
            user["_pendingAvatarUrl"] = data["avatarUrl"]
        wanted = data.get("username")
        # The admin running the import must never lose their login or lock themself out.
        if user["_id"] != run.importing_user_id:
            if (
                wanted
                and wanted.casefold() != (user.get("username") or "").casefold()
                and not self.username_taken(wanted, user["_id"])
            ):
                user["username"] = wanted
            user["active"] = not data.get("deleted")
        user["_updatedAt"] = run.now
        if user["_id"] in self.new:
            self.new[user["_id"]] = user
        else:
            self.changed[user["_id"]] = user
            run.report.users_updated += 1

    def flush(self) -> None:
        users = self.run.users
        users.insert_many(self.new.values())
        if self.changed:
            users.update_many(self.changed)
        for user in [*self.new.values(), *self.changed.values()]:
            person = _Person(user["_id"], user["username"], user.get("name"))
            for import_id in user.get("importIds") or []:
                self.run.people[import_id] = person
        self.__init__(self.run)


def _merged(first: list | None, second: list | None) -> list:
    """Both lists' items, first list first, each once."""
    return list(dict.fromkeys([*(first or []), *(second or [])]))


def _unique_emails(data: dict) -> list[str]:
    seen: dict[str, str] = {}
    for address in data.get("emails") or []:
        if isinstance(address, str) and address.strip():
            seen.setdefault(address.strip().casefold(), address.strip())
    return list(seen.values())


def _import_users(run: _Run) -> None:
    run.enter(STEP_USERS)
    batch = _UserBatch(run)
    for records in run.batches(USER):
        for sequence, data in records:
            run.completed += 1
            if not run.selection.wants_user(data.get("importIds") or []):
                run.report.users_skipped += 1
                continue
            try:
                if not _unique_emails(data) and not data.get("username"):
                    raise _RecordError(E_USER_NO_IDENTITY)
                batch.add(data)
            except Exception as problem:  # noqa: BLE001 - one bad record must not stop a run
                run.fail(USER, sequence, _code(problem))
        run.checkpoint(batch.flush)
    batch.flush()


# ============================================================================
# rooms
# ============================================================================


class _RoomBatch:
    def __init__(self, run: _Run):
        self.run = run
        self.new: dict[str, dict] = {}
        self.changed: dict[str, dict] = {}
        self.members: dict[str, set[str]] = {}
        self.new_by_key: dict[str, str] = {}  # "i:<import id>", "n:<name>", "d:<members>"

    def find(self, data: dict, member_ids: list[str]) -> dict | None:
        workspace = self.run.workspace
        for import_id in data.get("importIds") or []:
            if f"i:{import_id}" in self.new_by_key:
                return self.new[self.new_by_key[f"i:{import_id}"]]
            room = workspace.room_by_import_id(import_id)
            if room is not None:
                return self.changed.get(room["_id"], room)
        if data.get("t") == "d":
            key = workspace.members_key(member_ids)
            if f"d:{key}" in self.new_by_key:
                return self.new[self.new_by_key[f"d:{key}"]]
            room = workspace.direct_room_by_members(member_ids)
        else:
            name = _room_name(data["name"])
            if f"n:{name}" in self.new_by_key:
                return self.new[self.new_by_key[f"n:{name}"]]
            room = workspace.room_by_name(name)
        return None if room is None else self.changed.get(room["_id"], room)

    def add(self, data: dict, members: list[_Person], creator: _Person) -> None:
        member_ids = [m.id for m in members]
        room = self.find(data, member_ids)
        if room is None:
            room = self._create(data, members, creator)
        else:
            room = self._update(room, data, member_ids)
        place = _Place(room["_id"], room.get("name"))
        for import_id in data.get("importIds") or []:
            self.run.places[import_id] = place
        if room.get("name"):
            self.run.places_by_name[room["name"]] = place

    def _create(self, data: dict, members: list[_Person], creator: _Person) -> dict:
        run = self.run
        direct = data.get("t") == "d"
        member_ids = list(dict.fromkeys(m.id for m in members))
        if not direct and creator.id not in member_ids:
            member_ids.append(creator.id)
        room_id = random_id()
        if direct and len(member_ids) == 2:
            # Rocket.Chat names a two-person DM after its members' ids.
            candidate = "".join(sorted(member_ids))
            if candidate not in self.new and run.workspace.room(candidate) is None:
                room_id = candidate
        micros = _micros(data.get("ts"))
        room = {
            "_id": room_id,
            "t": data.get("t") if data.get("t") in ("c", "p", "d") else "c",
            "u": {"_id": creator.id, "username": creator.username},
            "ts": _iso_from_micros(micros) if micros is not None else run.now,
            "ro": False,
            "default": False,
            "sysMes": True,
            "msgs": 0,
            "usersCount": len(member_ids),
            "archived": bool(data.get("archived")),
            "_updatedAt": run.now,
            "importIds": list(dict.fromkeys(data.get("importIds") or [])),
        }
        if direct:
            people = list({m.id: m for m in members}.values())
            room["uids"] = [p.id for p in people]
            room["usernames"] = [p.username for p in people]
        else:
            room["name"] = _room_name(data["name"])
            room["fname"] = data["name"]
        for key in ("topic", "description"):
            if data.get(key):
                room[key] = data[key]
        self.new[room_id] = room
        self.members[room_id] = set(member_ids)
        for import_id in room["importIds"]:
            self.new_by_key[f"i:{import_id}"] = room_id
        if direct:
            self.new_by_key[f"d:{run.workspace.members_key(room['uids'])}"] = room_id
        else:
            self.new_by_key[f"n:{room['name']}"] = room_id
        run.report.rooms_created += 1
        return room

    def _update(self, room: dict, data: dict, member_ids: list[str]) -> dict:
        room = dict(room)
        room["importIds"] = _merged(room.get("importIds"), data.get("importIds"))
        for key in ("topic", "description"):
            if data.get(key):
                room[key] = data[key]
        if "archived" in data and data["archived"] is not None:
            room["archived"] = bool(data["archived"])
        room["_updatedAt"] = self.run.now
        if room["_id"] in self.new:
            self.new[room["_id"]] = room
            self.members[room["_id"]].update(member_ids)
            return room
        if room["_id"] not in self.changed:
            self.run.report.rooms_updated += 1
            self.members[room["_id"]] = set(self.run.workspace.members(room["_id"]))
        self.members[room["_id"]].update(member_ids)
        self.changed[room["_id"]] = room
        return room

    def flush(self) -> None:
        workspace = self.run.workspace
        for room_id, member_ids in self.members.items():
            room = self.new.get(room_id) or self.changed[room_id]
            room["usersCount"] = len(member_ids)
            workspace.set_members(room_id, member_ids)
        workspace.insert_rooms(self.new.values())
        if self.changed:
            workspace.update_rooms(self.changed)
        self.__init__(self.run)


def _room_name(name: str) -> str:
    # Rocket.Chat refuses spaces in room names unless special characters are allowed.
    return "-".join(name.split())


def _import_channels(run: _Run) -> None:
    run.enter(STEP_CHANNELS)
    batch = _RoomBatch(run)
    importer = None
    importing = run.users.get(run.importing_user_id) if run.importing_user_id else None
    if importing is not None:
        importer = _Person(importing["_id"], importing["username"], importing.get("name"))
    for records in run.batches(CHANNEL):
        for sequence, data in records:
            run.completed += 1
            try:
                _add_channel(run, batch, data, importer)
            except Exception as problem:  # noqa: BLE001 - one bad record must not stop a run
                run.fail(CHANNEL, sequence, _code(problem))
        run.checkpoint(batch.flush)
    batch.flush()


def _add_channel(run: _Run, batch: _RoomBatch, data: dict, importer: _Person | None) -> None:
    import_ids = data.get("importIds") or []
    channel_type = data.get("t") or "c"
    if not run.selection.wants_channel(channel_type, import_ids):
        run.report.rooms_skipped += 1
        run.left_out_rooms.update(import_ids)
        return
    if not import_ids:
        raise _RecordError(E_CHANNEL_NO_IMPORT_ID)
    direct = channel_type == "d"
    if not direct and not (data.get("name") or "").strip():
        raise _RecordError(E_CHANNEL_NO_NAME)
    members = []
    for member in data.get("users") or []:
        person = run.person(member)
        if person is not None:
            members.append(person)
        elif direct:
            raise _RecordError(E_CHANNEL_MEMBERS)
    if direct and not members:
        raise _RecordError(E_CHANNEL_MEMBERS)
    creator = run.person((data.get("u") or {}).get("_id"))
    if creator is None:
        creator = members[0] if direct else importer
    if creator is None:
        raise _RecordError(E_CHANNEL_CREATOR)
    batch.add(data, members, creator)


# ============================================================================
# messages
# ============================================================================


def _import_messages(run: _Run) -> set[str]:
    run.enter(STEP_MESSAGES)
    with run.workspace.writer() as writer:
        try:
            for records in run.batches(MESSAGE):
                for sequence, data in records:
                    run.completed += 1
                    try:
                        message = _message(run, data)
                    except Exception as problem:  # noqa: BLE001 - see _code
                        run.fail(MESSAGE, sequence, _code(problem))
                        continue
                    if message is None:
                        run.report.messages_skipped += 1
                        continue
                    writer.add(message)
                    run.report.messages_imported += 1
                run.checkpoint(lambda: None)
        finally:
            # Also on cancel: what was converted is stored and its rooms stay consistent.
            writer.flush()
            run.workspace.refresh_room_stats(writer.rooms, now_iso())
    return writer.rooms


def _message(run: _Run, data: dict) -> dict | None:
    room_import_id = data.get("rid")
    if room_import_id in run.left_out_rooms:
        return None
    place = run.place(room_import_id)
    if place is None:
        raise _RecordError(E_MESSAGE_ROOM)
    author = run.person((data.get("u") or {}).get("_id"))
    if author is None:
        raise _RecordError(E_MESSAGE_USER)
    micros = _micros(data.get("ts"))
    if micros is None:
        raise _RecordError(E_MESSAGE_TIMESTAMP)

    text = data.get("msg") or ""
    mentions: dict[str, dict] = {}
    channels: dict[str, dict] = {}
    for reference in data.get("mentions") or []:
        _mention(run, reference, mentions)
    for reference in data.get("channels") or []:
        place_ref = run.place_by_reference(reference)
        if place_ref is not None:
            channels[place_ref.id] = {"_id": place_ref.id, "name": place_ref.name}
    if "@" in text or "#" in text:
        text = _REFERENCE.sub(lambda match: _rewrite(run, match, mentions, channels), text)

    message = {
        "_id": data.get("_id") or _derived_id(place.id, micros, author.id, text),
        "rid": place.id,
        "msg": text,
        "ts": _iso_from_micros(micros),
        "_sort": micros,
        "u": {"_id": author.id, "username": author.username, "name": author.name},
        "_updatedAt": run.now,
        "mentions": list(mentions.values()),
        "channels": list(channels.values()),
    }
    for key, value in data.items():
        if key in _PASSED_THROUGH and value is not None:
            message[key] = value
    if data.get("_importFile"):
        message["_importFile"] = dict(data["_importFile"])
    if data.get("reactions"):
        message["reactions"] = _reactions(run, data["reactions"])
    if data.get("replies"):
        replies = [run.person(r) for r in data["replies"]]
        message["replies"] = list(dict.fromkeys(p.id for p in replies if p is not None))
    if data.get("tlm") is not None:
        message["tlm"] = _iso_or_none(data["tlm"])
    if data.get("editedAt") is not None:
        message["editedAt"] = _iso_or_none(data["editedAt"])
        editor = run.person(data.get("editedBy"))
        if editor is not None:
            message["editedBy"] = {"_id": editor.id, "username": editor.username}
    return message


def _mention(run: _Run, reference: Any, mentions: dict[str, dict]) -> _Person | None:
    if reference in ("all", "here"):
        mentions[reference] = {"_id": reference, "username": reference, "type": "user"}
        return None
    person = run.person(reference)
    if person is None:
        # Rocket.Chat drops the whole message here (its issue #24664); Ferry keeps it.
        run.report.warnings += 1
        return None
    mentions[person.id] = {
        "_id": person.id,
        "username": person.username,
        "name": person.name,
        "type": "user",
    }
    return person


def _rewrite(run: _Run, match: re.Match, mentions: dict, channels: dict) -> str:
    sigil, reference = match.group(1), match.group(2)
    if sigil == "@":
        if reference in ("all", "here"):
            mentions.setdefault(
                reference, {"_id": reference, "username": reference, "type": "user"}
            )
            return match.group(0)
        person = run.person(reference)
        if person is None:
            return match.group(0)
        mentions.setdefault(
            person.id,
            {"_id": person.id, "username": person.username, "name": person.name, "type": "user"},
        )
        return "@" + person.username
    place = run.place(reference)
    if place is None or not place.name:
        return match.group(0)
    channels.setdefault(place.id, {"_id": place.id, "name": place.name})
    return "#" + place.name


def _reactions(run: _Run, reactions: Any) -> dict[str, dict]:
    """Staged `{":e:": {name, users}}` or `[{name, users}]` to `{":e:": {usernames}}`."""
    entries = reactions.values() if isinstance(reactions, dict) else reactions
    keys = list(reactions) if isinstance(reactions, dict) else [None] * len(reactions)
    converted: dict[str, dict] = {}
    for key, entry in zip(keys, entries, strict=True):
        name = (entry or {}).get("name") or key
        if not name:
            continue
        name = f":{name.strip(':')}:"
        usernames = converted.setdefault(name, {"usernames": []})["usernames"]
        for reference in (entry or {}).get("users") or []:
            person = run.person(reference)
            if person is not None and person.username not in usernames:
                usernames.append(person.username)
    return converted


def _derived_id(room_id: str, micros: int, author_id: str, text: str) -> str:
    # A message staged without an id still gets the same one on every run.
    digest = hashlib.sha256(f"{room_id}\0{micros}\0{author_id}\0{text}".encode()).hexdigest()
    return f"import-{digest[:24]}"


# ============================================================================
# entry point
# ============================================================================


def run_import(
    operation_id: str,
    *,
    staging: StagingArea,
    users: UserRepository,
    workspace: WorkspaceStore,
    selection: Selection,
    importing_user_id: str | None,
    progress: Callable[[str, int, int, int], None] | None = None,
    should_continue: Callable[[], bool] | None = None,
    progress_interval: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
) -> ImportReport:
    """Convert the finished staging of `operation_id`; see the module docstring.

    Raises:
        storage.staging.StagingIncomplete: the operation has no finished prepare.
        ImportCancelled: `should_continue()` returned False between two batches.
    """
    run = _Run(
        operation_id,
        staging,
        users,
        workspace,
        selection,
        importing_user_id,
        progress,
        should_continue,
        progress_interval,
        clock,
    )
    try:
        _import_users(run)
        _import_channels(run)
        _import_messages(run)
        run.enter(STEP_FINISHING)
    finally:
        if run.marks:
            staging.mark_errors(operation_id, run.marks)
            run.marks = []
    return run.report
