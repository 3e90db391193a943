"""Who is in a room, and the rooms-wide reads Rocket.Chat clients make around an import.

    directory = RoomDirectory(queries, users)
    directory.members(RoomType.CHANNEL, reader, room_id, room_name, offset, count)
        -> {"members": [{_id, username, name, status}], "count", "offset", "total"}
    directory.room_roles(RoomType.CHANNEL, reader, room_id, room_name) -> {"roles": []}
    directory.room_info(reader, room_id, room_name) -> {"room": {...}}
    directory.presence(reader, user_id, username) -> {"presence": "offline"}

Members are listed as Rocket.Chat's channels.members lists them: a short public
profile each, sorted by username. Everyone reads as offline: an imported workspace has
no live sessions. rooms.info answers any room type the reader may read, and answers
`not-allowed` for one that does not exist or that they may not read, as Rocket.Chat
does, so the answer never tells the two apart.
"""

from __future__ import annotations

from typing import Any

from ferry.chat.list_query import MEMBER_LIST, ListQuery, page_window
from ferry.chat.reads import Reader, RoomNotFound, WorkspaceQueries
from ferry.kernel.errors import InvalidInput, MeteorError
from storage.users import UserRepository

OFFLINE = "offline"
MEMBER_FIELDS = ("_id", "username", "name")


class RoomNotAllowed(InvalidInput):
    """rooms.info's answer for a room that is missing or not the reader's to read."""

    def __init__(self):
        super().__init__("not-allowed", error_type="Not Allowed")


class UserNotFound(MeteorError):
    def __init__(self):
        super().__init__(
            "error-invalid-user",
            'The required "userId" or "username" param provided does not match any users',
        )


def member_profile(user: dict) -> dict[str, Any]:
    """The public part of a user that a room's member list shows."""
    profile = {field: user[field] for field in MEMBER_FIELDS if field in user}
    profile["status"] = OFFLINE
    return profile


class RoomDirectory:
    def __init__(self, queries: WorkspaceQueries, users: UserRepository):
        self._queries = queries
        self._users = users

    def members(
        self,
        room_type: str,
        reader: Reader,
        room_id: str | None = None,
        room_name: str | None = None,
        offset: Any = 0,
        count: Any = 50,
        **habits: Any,
    ) -> dict[str, Any]:
        """A page of the room's members; `habits` are Rocket.Chat's `sort`, `query` and
        `fields` over the profiles shown."""
        room = self._queries.find_room(room_type, reader, room_id, room_name)
        offset, count = page_window(offset, count)
        wanted = ListQuery.parse(MEMBER_LIST, **habits)
        users = [self._users.get(user_id) for user_id in self._queries.member_ids(room["_id"])]
        profiles = sorted(
            (member_profile(user) for user in users if user is not None),
            key=lambda profile: (profile.get("username") or "", profile["_id"]),
        )
        page, total = wanted.page(profiles, offset, count)
        return {"members": page, "count": len(page), "offset": offset, "total": total}

    def room_roles(
        self,
        room_type: str,
        reader: Reader,
        room_id: str | None = None,
        room_name: str | None = None,
    ) -> dict[str, Any]:
        """channels.roles / groups.roles: imported rooms carry no per-room roles (owner,
        moderator, leader), so a readable room answers an empty list."""
        self._queries.find_room(room_type, reader, room_id, room_name)
        return {"roles": []}

    def room_info(
        self, reader: Reader, room_id: str | None = None, room_name: str | None = None
    ) -> dict[str, Any]:
        try:
            room = self._queries.find_any_room(reader, room_id, room_name)
        except RoomNotFound:
            raise RoomNotAllowed() from None
        return {"room": room}

    def presence(self, user_id: str | None = None, username: str | None = None) -> dict:
        user = None
        if user_id:
            user = self._users.get(user_id)
        elif username:
            user = self._users.by_username(username)
        if user is None:
            raise UserNotFound()
        return {"presence": OFFLINE}
