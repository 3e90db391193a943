"""Rocket.Chat's roles.getUsersInRole: who holds a role.

    RoleMembers(users).users_in_role(role, room_id, offset, count)
        -> {"users": [{_id, username, name, emails, createdAt, _updatedAt}], "total"}

Users are listed by username with the short profile Rocket.Chat projects. A room role
(owner, moderator, leader) is held per room, and imported rooms carry none, so it lists
nobody; a server-wide role ignores `roomId`, as Rocket.Chat's does. `count` above the
maximum is clamped.
"""

from __future__ import annotations

from typing import Any

from ferry.accounts import ROLE_PERMISSIONS, ROOM_ROLES
from ferry.chat.list_query import page_window
from ferry.kernel.errors import MeteorError
from storage.users import UserRepository

MAX_COUNT = 100
PROFILE_FIELDS = ("_id", "username", "name", "emails", "createdAt", "_updatedAt")
# Users are read this many at a time, so a scan never holds more than one batch beyond
# the role's holders.
_BATCH = 500


class RoleNotFound(MeteorError):
    def __init__(self):
        super().__init__("error-invalid-roleId", "This role does not exist")


class RoleMembers:
    def __init__(self, users: UserRepository):
        self._users = users

    def _holders(self, role: str) -> list[dict]:
        holders, start = [], 0
        while True:
            batch, total = self._users.page(start, _BATCH)
            holders.extend(
                {key: user[key] for key in PROFILE_FIELDS if key in user}
                for user in batch
                if role in (user.get("roles") or [])
            )
            start += _BATCH
            if start >= total or not batch:
                return holders

    def users_in_role(
        self, role: str, room_id: str | None = None, offset: Any = 0, count: Any = 50
    ) -> dict[str, Any]:
        if role not in ROLE_PERMISSIONS:
            raise RoleNotFound()
        offset, count = page_window(offset, count, MAX_COUNT)
        holders = [] if role in ROOM_ROLES else self._holders(role)
        holders.sort(key=lambda user: (user.get("username") or "", user["_id"]))
        return {"users": holders[offset : offset + count], "total": len(holders)}
