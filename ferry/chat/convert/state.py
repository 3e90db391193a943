"""The state of one conversion run: what was asked for, what was found, what it did."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ferry.kernel.ids import now_iso
from ferry.kernel.rocketchat import DIRECT_MESSAGES_ID, ROCKET_CAT
from ferry.kernel.statuses import Role, RoomType, UserType
from storage.contacts import ContactRepository
from storage.staging import StagingArea
from storage.users import UserRepository
from storage.workspace import WorkspaceStore

# Records converted between two checkpoints (a write, a progress report, a cancel check).
BATCH = 1000
ERROR_SAMPLES = 50
WARNING_SAMPLES = 50


class ImportCancelled(Exception):
    """`should_continue()` said stop; what was converted so far is stored."""


@dataclass(frozen=True)
class Selection:
    """What startImport asked for: import ids of users and channels, or all of them."""

    all_users: bool = False
    users: frozenset[str] = frozenset()
    all_channels: bool = False
    channels: frozenset[str] = frozenset()
    all_contacts: bool = False
    contacts: frozenset[str] = frozenset()

    @classmethod
    def everything(cls) -> Selection:
        return cls(all_users=True, all_channels=True, all_contacts=True)

    @classmethod
    def from_input(cls, selection: dict | None) -> Selection:
        """From startImport's `input` (`{users: {all, list}, channels: ..., contacts: ...}`).

        `all: true` wins over `list`; a missing list imports none of that kind.
        """
        selection = selection or {}
        all_users, users = _chosen(selection.get("users"), "user_id")
        all_channels, channels = _chosen(selection.get("channels"), "channel_id")
        all_contacts, contacts = _chosen(selection.get("contacts"), "id")
        return cls(
            all_users=all_users,
            users=users,
            all_channels=all_channels,
            channels=channels,
            all_contacts=all_contacts,
            contacts=contacts,
        )

    def as_record(self) -> dict[str, Any]:
        """The selection as plain JSON, kept with a queued import."""
        return {
            "all_users": self.all_users,
            "users": sorted(self.users),
            "all_channels": self.all_channels,
            "channels": sorted(self.channels),
            "all_contacts": self.all_contacts,
            "contacts": sorted(self.contacts),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Selection:
        """The selection `as_record` gave."""
        return cls(
            all_users=bool(record.get("all_users")),
            users=frozenset(record.get("users") or ()),
            all_channels=bool(record.get("all_channels")),
            channels=frozenset(record.get("channels") or ()),
            all_contacts=bool(record.get("all_contacts")),
            contacts=frozenset(record.get("contacts") or ()),
        )

    def wants_user(self, import_ids: list[str]) -> bool:
        return self.all_users or bool(import_ids and import_ids[0] in self.users)

    def wants_contact(self, import_ids: list[str]) -> bool:
        return self.all_contacts or bool(import_ids and import_ids[0] in self.contacts)

    def wants_channel(self, channel_type: str, import_ids: list[str]) -> bool:
        if self.all_channels:
            return True
        if channel_type == RoomType.DIRECT:
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
    # Staged users that are accounts already there; an import never changes those.
    users_matched: int = 0
    users_skipped: int = 0
    rooms_created: int = 0
    rooms_updated: int = 0
    rooms_skipped: int = 0
    messages_imported: int = 0
    messages_skipped: int = 0
    contacts_created: int = 0
    # Contacts an earlier import created under the same import id; left as they are.
    contacts_matched: int = 0
    contacts_skipped: int = 0
    errors: int = 0
    # Problems that did not stop a record, e.g. a mention of a user that was not imported.
    warnings: int = 0
    error_samples: list[dict] = field(default_factory=list)
    # Readable warnings for the admin, the first WARNING_SAMPLES of them.
    warning_samples: list[str] = field(default_factory=list)


class Person(NamedTuple):
    id: str
    username: str
    name: str | None


class Place(NamedTuple):
    id: str
    name: str | None


class Run:
    """State of one run: caches of resolved ids, counters, progress throttling."""

    def __init__(
        self,
        operation_id,
        *,
        staging,
        users,
        workspace,
        contacts=None,
        selection,
        importing_user_id,
        progress,
        should_continue,
        progress_interval,
        clock,
        batch_size,
    ):
        self.operation_id = operation_id
        self.staging: StagingArea = staging
        self.users: UserRepository = users
        self.workspace: WorkspaceStore = workspace
        self.contacts: ContactRepository | None = contacts
        self.selection: Selection = selection
        self.importing_user_id = importing_user_id
        self.on_progress = progress
        self.should_continue = should_continue or (lambda: True)
        self.interval = progress_interval
        self.clock = clock
        self.batch_size = batch_size
        self.report = ImportReport()
        self.now = now_iso()
        counts = staging.counts(operation_id)
        self.total = counts["users"] + counts["channels"] + counts["messages"] + counts["contacts"]
        self.completed = 0
        self.step = ""
        self.last_report = float("-inf")
        self.marks: list[tuple[str, int, str]] = []
        self.people: dict[str, Person | None] = {}
        self.places: dict[str, Place | None] = {}
        self.places_by_name: dict[str, Place] = {}
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

    def warn(self, message: str) -> None:
        """Something the admin should know about a record that was still converted."""
        self.report.warnings += 1
        if len(self.report.warning_samples) < WARNING_SAMPLES:
            self.report.warning_samples.append(message)

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
            if len(batch) >= self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    # --- lookups -------------------------------------------------------------

    def person(self, import_id: Any) -> Person | None:
        if not isinstance(import_id, str) or not import_id:
            return None
        if import_id in self.people:
            return self.people[import_id]
        user_id = self.users.id_for_import_id(import_id)
        found = None
        if user_id is not None:
            user = self.users.get(user_id)
            found = Person(user["_id"], user["username"], user.get("name"))
        elif import_id == ROCKET_CAT:
            found = self._rocket_cat()
        self.people[import_id] = found
        return found

    def _rocket_cat(self) -> Person:
        # Slack's USLACKBOT and HipChat notifications are authored by rocket.cat.
        user = self.users.by_username(ROCKET_CAT)
        if user is None:
            user = {
                "_id": ROCKET_CAT,
                "username": ROCKET_CAT,
                "name": "Rocket.Cat",
                "emails": [],
                "roles": [Role.BOT],
                "active": True,
                "type": UserType.BOT,
                "createdAt": self.now,
                "_updatedAt": self.now,
                "importIds": [ROCKET_CAT],
                "utcOffset": 0,
                "statusText": "",
                "bio": "",
            }
            self.users.insert(user)
        return Person(user["_id"], user["username"], user.get("name"))

    def place(self, import_id: Any) -> Place | None:
        if not isinstance(import_id, str) or not import_id:
            return None
        if import_id not in self.places:
            room = self.workspace.room_by_import_id(import_id)
            self.places[import_id] = Place(room["_id"], room.get("name")) if room else None
        return self.places[import_id]

    def place_by_reference(self, reference: Any) -> Place | None:
        """A `channels` entry: an import id or a room name."""
        found = self.place(reference)
        if found is None and isinstance(reference, str):
            found = self.places_by_name.get(reference)
            if found is None:
                room = self.workspace.room_by_name(reference)
                if room is not None:
                    found = self.places_by_name[reference] = Place(room["_id"], room.get("name"))
        return found
