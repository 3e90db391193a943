"""Staged users to Ferry users, without ever changing an account that already exists.

A staged user is matched to an account by any of its emails, then by its username (both
case-insensitively, as Rocket.Chat does), then by an import id. A matched account only
gains the staged import ids, so that the export's messages and memberships attach to
it; its roles, active flag, username, name, emails and profile stay as they are, and
the run's warnings say which of them the export wanted otherwise. Only a user the
import creates takes the export's fields, and of its roles only those an import may
grant. A created user's username follows the username rule: repaired as Rocket.Chat
repairs names and made unique against every username and email already in use, so
that no import can take another user's login name.
"""

from __future__ import annotations

from typing import Any

from ferry.chat.convert.record_errors import E_USER_NO_IDENTITY, RecordError, error_code
from ferry.chat.convert.state import Person, Run
from ferry.chat.convert.values import merged
from ferry.kernel.ids import random_id
from ferry.kernel.rocketchat import ROCKET_CAT
from ferry.kernel.statuses import ImportStep, Role, UserType
from ferry.kernel.usernames import USERNAME_MAX_LENGTH, is_valid_username, username_slug
from storage.staging import USER

# An export may give any of Rocket.Chat's default roles but admin, which is an admin's
# decision; the others grant nothing beyond a user's rights in Ferry.
IMPORTABLE_ROLES = tuple(role for role in Role if role != Role.ADMIN)
# Mentions of everyone, and the server's own bot, which authors system messages.
RESERVED_USERNAMES = frozenset({"all", "here", ROCKET_CAT})
# The longest text field an import stores, as import.addUsers bounds them.
TEXT_LIMITS = {"name": 256, "statusText": 512, "bio": 4096}
_EMAIL_MAX_LENGTH = 254
# How much of a name is looked at to make a username of it.
_SEED_LENGTH = 256
_SHOWN_NAME_LENGTH = 64


class _UserBatch:
    """Users of one batch, written with one insert and one update."""

    def __init__(self, run: Run):
        self.run = run
        self.created_ids: set[str] = set()  # by this run, in this batch or an earlier one
        # The last suffix given to a repaired username, so that a thousand rows named alike
        # do not each try every taken name again.
        self.last_suffix: dict[str, int] = {}
        self._start()

    def _start(self) -> None:
        self.new: dict[str, dict] = {}
        self.matched: dict[str, dict] = {}  # user id -> the account with its new import ids
        self.new_by_email: dict[str, str] = {}
        self.new_by_username: dict[str, str] = {}
        self.new_by_import_id: dict[str, str] = {}

    def holder_of(self, import_id: str) -> str | None:
        """The user an import id already names, in this batch or stored."""
        return self.new_by_import_id.get(import_id) or self.run.users.id_for_import_id(import_id)

    def find(self, data: dict) -> tuple[dict, str] | None:
        """The account a staged user is, and what matched it ("email", "username", ...)."""
        users = self.run.users
        for address in _unique_emails(data):
            key = address.casefold()
            if key in self.new_by_email:
                return self._current(self.new_by_email[key]), "email"
            found = users.by_email(address)
            if found is not None:
                return self._current(found["_id"], found), "email"
        username = _text(data.get("username"))
        if username:
            key = username.casefold()
            if key in self.new_by_username:
                return self._current(self.new_by_username[key]), "username"
            found = users.by_username(username)
            if found is not None:
                return self._current(found["_id"], found), "username"
        for import_id in _import_ids(data):
            user_id = self.holder_of(import_id)
            if user_id is not None:
                found = self._current(user_id)
                if found is not None:
                    return found, "import id"
        return None

    def _current(self, user_id: str, stored: dict | None = None) -> dict | None:
        if user_id in self.new:
            return self.new[user_id]
        if user_id in self.matched:
            return self.matched[user_id]
        return stored if stored is not None else self.run.users.get(user_id)

    def identifier_taken(self, name: str) -> bool:
        """Whether `name` is anyone's username or email, or reserved, case-insensitively."""
        key = name.casefold()
        users = self.run.users
        return (
            key in RESERVED_USERNAMES
            or key in self.new_by_username
            or key in self.new_by_email
            or users.by_username(name) is not None
            or users.by_email(name) is not None
        )

    def unique_username(self, data: dict) -> str:
        """The staged username if it obeys the rule and is free, else a repaired free one."""
        wanted = _text(data.get("username"))
        if wanted and is_valid_username(wanted) and not self.identifier_taken(wanted):
            return wanted
        emails = _unique_emails(data)
        seeds = [wanted, _text(data.get("name")), emails[0].split("@")[0] if emails else None]
        base = next(
            (slug for seed in seeds if seed and (slug := username_slug(seed[:_SEED_LENGTH]))),
            "user",
        )
        candidate, suffix = base, self.last_suffix.get(base, 0)
        while self.identifier_taken(candidate):
            suffix += 1
            ending = f"-{suffix}"
            candidate = base[: USERNAME_MAX_LENGTH - len(ending)] + ending
        self.last_suffix[base] = suffix
        return candidate

    def add(self, data: dict) -> None:
        found = self.find(data)
        if found is None:
            self._create(data)
        else:
            self._attach(*found, data)

    def _create(self, data: dict) -> None:
        run = self.run
        username = self.unique_username(data)
        asked = [role for role in data.get("roles") or [] if isinstance(role, str)]
        roles = [role for role in dict.fromkeys(asked) if role in IMPORTABLE_ROLES]
        user = {
            "_id": random_id(),
            "username": username,
            "name": _text(data.get("name"), TEXT_LIMITS["name"]) or username,
            "emails": [{"address": a, "verified": False} for a in _unique_emails(data)],
            "roles": roles or [Role.USER],
            "active": not data.get("deleted"),
            "type": UserType.BOT if data.get("type") == UserType.BOT else UserType.USER,
            "createdAt": run.now,
            "_updatedAt": run.now,
            "importIds": _import_ids(data),
            "utcOffset": _number(data.get("utcOffset")),
            "statusText": _text(data.get("statusText"), TEXT_LIMITS["statusText"]) or "",
            "bio": _text(data.get("bio"), TEXT_LIMITS["bio"]) or "",
        }
        # import.addUsers stages a password hashed; the user logs in with it.
        password_hash = _text(data.get("passwordHash"))
        if password_hash:
            user["password"] = password_hash
        avatar = _text(data.get("avatarUrl"))
        if avatar:
            user["_pendingAvatarUrl"] = avatar
        self.new[user["_id"]] = user
        self.created_ids.add(user["_id"])
        for import_id in user["importIds"]:
            self.new_by_import_id[import_id] = user["_id"]
        for address in user["emails"]:
            self.new_by_email.setdefault(address["address"].casefold(), user["_id"])
        self.new_by_username[username.casefold()] = user["_id"]
        run.report.users_created += 1
        shown = _shown(data)
        wanted = _text(data.get("username"))
        if wanted and wanted != username:
            run.warn(
                f"User {shown} was created as {username!r}: a username is letters, digits, "
                "'.', '_' and '-', is not another user's username or email, and is not "
                "a reserved name."
            )
        refused = [role for role in dict.fromkeys(asked) if role not in IMPORTABLE_ROLES]
        if refused:
            run.warn(
                f"User {shown} was created without the role(s) {_listed(refused)} the export "
                "gives it; an import never grants 'admin' (use roles.addUserToRole)."
            )

    def _attach(self, user: dict, how: str, data: dict) -> None:
        run = self.run
        user_id = user["_id"]
        # An import id another account holds stays with it, so each id means one person.
        free = [i for i in _import_ids(data) if self.holder_of(i) in (None, user_id)]
        for import_id in free:
            self.new_by_import_id[import_id] = user_id
        import_ids = merged(user.get("importIds"), free)
        if import_ids != (user.get("importIds") or []):
            user = {**user, "importIds": import_ids}
            if user_id in self.new:
                self.new[user_id] = user
            else:
                self.matched[user_id] = user
        ignored = _ignored_fields(user, data)
        if user_id in self.created_ids:
            if ignored:
                run.warn(
                    f"User {_shown(data)} matched the user {user['username']!r} this import "
                    f"created from an earlier record, by {how}; its "
                    f"{_listed(ignored, quoted=False)} were taken from that first record."
                )
            return
        run.report.users_matched += 1
        if ignored:
            run.warn(
                f"User {_shown(data)} matched the existing account {user['username']!r} by "
                f"{how}; its {_listed(ignored, quoted=False)} were left as they are "
                "(an import never changes an account that already exists)."
            )

    def flush(self) -> None:
        users = self.run.users
        users.insert_many(self.new.values())
        if self.matched:
            users.update_many(
                {
                    user_id: {"importIds": user["importIds"]}
                    for user_id, user in self.matched.items()
                }
            )
        for user in [*self.new.values(), *self.matched.values()]:
            person = Person(user["_id"], user["username"], user.get("name"))
            for import_id in user.get("importIds") or []:
                self.run.people[import_id] = person
        self._start()


def _ignored_fields(user: dict, data: dict) -> list[str]:
    """What a staged user asks of an existing account that the import does not do."""
    ignored = []
    # Every account is a user; only roles beyond that are worth a warning.
    held = {*(user.get("roles") or []), Role.USER}
    if any(isinstance(r, str) and r not in held for r in data.get("roles") or []):
        ignored.append("roles")
    if data.get("deleted") is not None and bool(data["deleted"]) == user.get("active", True):
        ignored.append("active status")
    username = _text(data.get("username"))
    if username and username.casefold() != (user.get("username") or "").casefold():
        ignored.append("username")
    name = _text(data.get("name"))
    if name and name != user.get("name"):
        ignored.append("name")
    known = {e["address"].casefold() for e in user.get("emails") or []}
    if any(a.casefold() not in known for a in _unique_emails(data)):
        ignored.append("emails")
    return ignored


def _shown(data: dict) -> str:
    """A staged user as the warnings name it: its username or first import id, escaped."""
    label = _text(data.get("username")) or next(iter(_import_ids(data)), "") or "(unnamed)"
    if len(label) > _SHOWN_NAME_LENGTH:
        label = label[:_SHOWN_NAME_LENGTH] + "..."
    return repr(label)


def _listed(items: list[str], quoted: bool = True) -> str:
    shown = [repr(i[:_SHOWN_NAME_LENGTH]) if quoted else i for i in items]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _text(value: Any, limit: int | None = None) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value if limit is None else value[:limit]


def _number(value: Any) -> float:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _import_ids(data: dict) -> list[str]:
    return list(dict.fromkeys(i for i in data.get("importIds") or [] if isinstance(i, str) and i))


def _unique_emails(data: dict) -> list[str]:
    seen: dict[str, str] = {}
    for address in data.get("emails") or []:
        if isinstance(address, str) and address.strip() and len(address) <= _EMAIL_MAX_LENGTH:
            seen.setdefault(address.strip().casefold(), address.strip())
    return list(seen.values())


def import_users(run: Run) -> None:
    run.enter(ImportStep.IMPORTING_USERS)
    batch = _UserBatch(run)
    for records in run.batches(USER):
        for sequence, data in records:
            run.completed += 1
            if not run.selection.wants_user(_import_ids(data)):
                run.report.users_skipped += 1
                continue
            try:
                if not _unique_emails(data) and not _text(data.get("username")):
                    raise RecordError(E_USER_NO_IDENTITY)
                batch.add(data)
            except Exception as problem:  # noqa: BLE001 - one bad record must not stop a run
                run.fail(USER, sequence, error_code(problem))
        run.checkpoint(batch.flush)
    batch.flush()
