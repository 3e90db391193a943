"""Staged users to Ferry users: matched by email, then username, then import id."""

from __future__ import annotations

import re

from ferry.chat.convert.record_errors import E_USER_NO_IDENTITY, RecordError, error_code
from ferry.chat.convert.state import Person, Run
from ferry.chat.convert.values import merged
from ferry.kernel.ids import random_id
from ferry.kernel.statuses import ImportStep, Role, UserType
from storage.staging import USER

_USERNAME_CHARS = re.compile(r"[^0-9A-Za-z._-]+")


class _UserBatch:
    """Users of one batch, written with one insert and one update."""

    def __init__(self, run: Run):
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
            "roles": list(data.get("roles") or [Role.USER]),
            "active": not data.get("deleted"),
            "type": UserType.BOT if data.get("type") == UserType.BOT else UserType.USER,
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
        user["roles"] = merged(user.get("roles"), data.get("roles"))
        user["importIds"] = merged(user.get("importIds"), data.get("importIds"))
        known = {e["address"].casefold() for e in user.get("emails") or []}
        user["emails"] = list(user.get("emails") or []) + [
            {"address": a, "verified": False}
            for a in _unique_emails(data)
            if a.casefold() not in known
        ]
        if data.get("type") in tuple(UserType):
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
            person = Person(user["_id"], user["username"], user.get("name"))
            for import_id in user.get("importIds") or []:
                self.run.people[import_id] = person
        self.__init__(self.run)


def _unique_emails(data: dict) -> list[str]:
    seen: dict[str, str] = {}
    for address in data.get("emails") or []:
        if isinstance(address, str) and address.strip():
            seen.setdefault(address.strip().casefold(), address.strip())
    return list(seen.values())


def import_users(run: Run) -> None:
    run.enter(ImportStep.IMPORTING_USERS)
    batch = _UserBatch(run)
    for records in run.batches(USER):
        for sequence, data in records:
            run.completed += 1
            if not run.selection.wants_user(data.get("importIds") or []):
                run.report.users_skipped += 1
                continue
            try:
                if not _unique_emails(data) and not data.get("username"):
                    raise RecordError(E_USER_NO_IDENTITY)
                batch.add(data)
            except Exception as problem:  # noqa: BLE001 - one bad record must not stop a run
                run.fail(USER, sequence, error_code(problem))
        run.checkpoint(batch.flush)
    batch.flush()
