"""users.info and users.list as Rocket.Chat clients call them.

    reads = UserReads(accounts, subscriptions)
    reads.info(viewer, user_id=, username=, import_id=, include_rooms=) -> {"user": {...}}
    reads.list(viewer, offset, count, sort=, query=, fields=)
        -> {"users": [...], "count", "offset", "total"}

A user is found by id, username, or an id they were imported under (Rocket.Chat's
`importId`), whichever comes first in that order. `includeUserRooms` adds `rooms`, one
short subscription per room the user is a member of, when the caller is that user or
administers rooms (Rocket.Chat asks for `view-other-user-channels`); to anyone else the
user is shown without it. `sort`, `query` and `fields` apply to what the caller is
shown of each user, so a filter never tells more than the answer does.
"""

from __future__ import annotations

from typing import Any

from ferry.accounts import LISTED_USER_FIELDS, Accounts, user_as_seen_by
from ferry.chat.list_query import USER_LIST, ListQuery, page_window
from ferry.chat.reads import ROOM_ADMINISTRATION, Reader
from ferry.chat.subscriptions import Subscriptions

# The fields of each room `includeUserRooms` lists, as Rocket.Chat projects them.
USER_ROOM_FIELDS = ("_id", "rid", "name", "t", "unread", "roles")


class UserReads:
    def __init__(self, accounts: Accounts, subscriptions: Subscriptions):
        self._accounts = accounts
        self._subscriptions = subscriptions

    def info(
        self,
        viewer: dict,
        *,
        user_id: str | None = None,
        username: str | None = None,
        import_id: str | None = None,
        include_rooms: bool = False,
    ) -> dict[str, Any]:
        user = self._accounts.find_user(user_id=user_id, username=username, import_id=import_id)
        shown = user_as_seen_by(user, viewer)
        itself = user["_id"] == viewer["_id"]
        if include_rooms and (itself or ROOM_ADMINISTRATION in Accounts.permissions_of(viewer)):
            member = Reader(user["_id"], Accounts.permissions_of(user))
            rooms = self._subscriptions.subscriptions(member)["update"]
            shown["rooms"] = sorted(
                (
                    {key: room[key] for key in USER_ROOM_FIELDS if key in room} | {"roles": []}
                    for room in rooms
                ),
                key=lambda room: (room["t"], room.get("name") or ""),
            )
        return {"user": shown}

    def list(self, viewer: dict, offset: Any = 0, count: Any = 50, **habits: Any) -> dict:
        offset, count = page_window(offset, count)
        wanted = ListQuery.parse(USER_LIST, **habits)

        def seen(users: list[dict]) -> list[dict]:
            return [user_as_seen_by(u, viewer, fields=LISTED_USER_FIELDS) for u in users]

        if wanted.filters_or_sorts:
            everyone, _ = self._accounts.list_users(0, None)
            users, total = wanted.page(seen(everyone), offset, count)
        else:
            page, total = self._accounts.list_users(offset, count)
            users = [wanted.project(user) for user in seen(page)]
        return {"users": users, "count": len(users), "offset": offset, "total": total}
