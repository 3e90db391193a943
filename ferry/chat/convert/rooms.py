"""Staged channels, groups and direct messages to Ferry rooms: matched by import id, then
by a direct message's member set, then by name.

A staged channel with the id `general` (any case) is Rocket.Chat's default room: it is
the room `GENERAL`, created with that id when the workspace has none yet."""

from __future__ import annotations

from ferry.chat.convert.record_errors import (
    E_CHANNEL_CREATOR,
    E_CHANNEL_MEMBERS,
    E_CHANNEL_NO_IMPORT_ID,
    E_CHANNEL_NO_NAME,
    RecordError,
    error_code,
)
from ferry.chat.convert.state import Person, Place, Run
from ferry.chat.convert.values import iso_from_micros, merged, micros_from_seconds
from ferry.kernel.ids import random_id
from ferry.kernel.rocketchat import GENERAL_ROOM_ID
from ferry.kernel.statuses import ImportStep, RoomType
from storage.staging import CHANNEL

_ROOM_TYPES = tuple(RoomType)


def _is_general(data: dict) -> bool:
    staged_id = data.get("_id")
    return (
        isinstance(staged_id, str)
        and staged_id.upper() == GENERAL_ROOM_ID
        and data.get("t") == RoomType.CHANNEL
    )


class _RoomBatch:
    def __init__(self, run: Run):
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
        if _is_general(data):
            if GENERAL_ROOM_ID in self.new:
                return self.new[GENERAL_ROOM_ID]
            room = workspace.room(GENERAL_ROOM_ID)
            if room is not None:
                return self.changed.get(room["_id"], room)
        if data.get("t") == RoomType.DIRECT:
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

    def add(self, data: dict, members: list[Person], creator: Person) -> None:
        member_ids = [m.id for m in members]
        room = self.find(data, member_ids)
        if room is None:
            room = self._create(data, members, creator)
        else:
            room = self._update(room, data, member_ids)
        place = Place(room["_id"], room.get("name"))
        for import_id in data.get("importIds") or []:
            self.run.places[import_id] = place
        if room.get("name"):
            self.run.places_by_name[room["name"]] = place

    def _create(self, data: dict, members: list[Person], creator: Person) -> dict:
        run = self.run
        direct = data.get("t") == RoomType.DIRECT
        member_ids = list(dict.fromkeys(m.id for m in members))
        if not direct and creator.id not in member_ids:
            member_ids.append(creator.id)
        room_id = random_id()
        if _is_general(data) and run.workspace.room(GENERAL_ROOM_ID) is None:
            room_id = GENERAL_ROOM_ID
        elif direct and len(member_ids) == 2:
            # Rocket.Chat names a two-person DM after its members' ids.
            candidate = "".join(sorted(member_ids))
            if candidate not in self.new and run.workspace.room(candidate) is None:
                room_id = candidate
        micros = micros_from_seconds(data.get("ts"))
        room = {
            "_id": room_id,
            "t": data.get("t") if data.get("t") in _ROOM_TYPES else RoomType.CHANNEL,
            "u": {"_id": creator.id, "username": creator.username},
            "ts": iso_from_micros(micros) if micros is not None else run.now,
            "ro": False,
            "default": room_id == GENERAL_ROOM_ID,
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
        room["importIds"] = merged(room.get("importIds"), data.get("importIds"))
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


def import_channels(run: Run) -> None:
    run.enter(ImportStep.IMPORTING_CHANNELS)
    batch = _RoomBatch(run)
    importer = None
    importing = run.users.get(run.importing_user_id) if run.importing_user_id else None
    if importing is not None:
        importer = Person(importing["_id"], importing["username"], importing.get("name"))
    for records in run.batches(CHANNEL):
        for sequence, data in records:
            run.completed += 1
            try:
                _add_channel(run, batch, data, importer)
            except Exception as problem:  # noqa: BLE001 - one bad record must not stop a run
                run.fail(CHANNEL, sequence, error_code(problem))
        run.checkpoint(batch.flush)
    batch.flush()


def _add_channel(run: Run, batch: _RoomBatch, data: dict, importer: Person | None) -> None:
    import_ids = data.get("importIds") or []
    channel_type = data.get("t") or RoomType.CHANNEL
    if not run.selection.wants_channel(channel_type, import_ids):
        run.report.rooms_skipped += 1
        run.left_out_rooms.update(import_ids)
        return
    if not import_ids:
        raise RecordError(E_CHANNEL_NO_IMPORT_ID)
    direct = channel_type == RoomType.DIRECT
    if not direct and not (data.get("name") or "").strip():
        raise RecordError(E_CHANNEL_NO_NAME)
    members = []
    for member in data.get("users") or []:
        person = run.person(member)
        if person is not None:
            members.append(person)
        elif direct:
            raise RecordError(E_CHANNEL_MEMBERS)
    if direct and not members:
        raise RecordError(E_CHANNEL_MEMBERS)
    creator = run.person((data.get("u") or {}).get("_id"))
    if creator is None:
        creator = members[0] if direct else importer
    if creator is None:
        raise RecordError(E_CHANNEL_CREATOR)
    batch.add(data, members, creator)
