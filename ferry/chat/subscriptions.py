"""Rocket.Chat's subscriptions.get and rooms.get over the imported workspace.

    subscriptions = Subscriptions(queries, users)
    subscriptions.subscriptions(reader, updated_since) -> {"update": [...], "remove": []}
    subscriptions.rooms(reader, updated_since)         -> {"update": [...], "remove": []}

A user is subscribed to exactly the rooms they are a member of. Imported history counts
as read, so a subscription is open, raises no alert, has nothing unread, and was last
seen at the room's newest message. Nothing in an imported workspace is unsubscribed, so
`remove` is always empty.
"""

from __future__ import annotations

from typing import Any

from ferry.chat.reads import Reader, WorkspaceQueries, parse_moment
from ferry.kernel.errors import MeteorError
from ferry.kernel.statuses import RoomType
from storage.users import UserRepository


def _changed_after(room: dict, since: int | None) -> bool:
    if since is None:
        return True
    changed = room.get("_updatedAt") or room.get("ts")
    if not changed:
        return True
    try:
        return parse_moment(changed)[0] > since
    except MeteorError:
        return True


def _since(updated_since: Any) -> int | None:
    """The moment in microseconds; a value that is not one raises InvalidQuery."""
    return None if updated_since is None else parse_moment(updated_since)[0]


def _direct_names(room: dict, username: str) -> tuple[str, str]:
    """A direct message is named after the other member (or the reader, alone in it)."""
    others = [name for name in room.get("usernames") or [] if name != username]
    other = others[0] if others else username
    return other, other


class Subscriptions:
    def __init__(self, queries: WorkspaceQueries, users: UserRepository):
        self._queries = queries
        self._users = users

    def _joined(self, reader: Reader, updated_since: Any) -> list[dict]:
        since = _since(updated_since)
        return [r for r in self._queries.joined_rooms(reader) if _changed_after(r, since)]

    def rooms(self, reader: Reader, updated_since: Any = None) -> dict[str, Any]:
        return {"update": self._joined(reader, updated_since), "remove": []}

    def subscriptions(self, reader: Reader, updated_since: Any = None) -> dict[str, Any]:
        user = self._users.get(reader.user_id) or {"_id": reader.user_id}
        subscriber = {key: user[key] for key in ("_id", "username", "name") if key in user}
        return {
            "update": [
                self._subscription(room, subscriber) for room in self._joined(reader, updated_since)
            ],
            "remove": [],
        }

    @staticmethod
    def _subscription(room: dict, subscriber: dict) -> dict[str, Any]:
        if room["t"] == RoomType.DIRECT:
            name, fname = _direct_names(room, subscriber.get("username", ""))
        else:
            name = room.get("name", "")
            fname = room.get("fname") or name
        created = room.get("ts")
        seen = room.get("lm") or created
        subscription = {
            "_id": f"{room['_id']}{subscriber['_id']}",
            "rid": room["_id"],
            "name": name,
            "fname": fname,
            "t": room["t"],
            "u": subscriber,
            "open": True,
            "alert": False,
            "unread": 0,
        }
        for key, value in (("ts", created), ("ls", seen), ("_updatedAt", room.get("_updatedAt"))):
            if isinstance(value, str):
                subscription[key] = value
        return subscription
