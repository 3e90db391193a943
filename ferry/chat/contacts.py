"""Reading imported omnichannel contacts as Rocket.Chat's `omnichannel/contacts.*` answer.

Who may call is the spec's business (`view-livechat-contact`); here a contact is shaped
for answers: its import ids are left out, as Rocket.Chat leaves them out, and a search
result names its manager (`{_id, username, name}`) instead of giving only the id.
"""

from __future__ import annotations

from typing import Any

from ferry.chat.list_query import page_window
from storage.contacts import ContactRepository
from storage.users import UserRepository

# Fields that are Ferry's or the importer's bookkeeping, never shown.
_HIDDEN = ("importIds",)


class ContactQueries:
    def __init__(self, contacts: ContactRepository, users: UserRepository):
        self._contacts = contacts
        self._users = users

    def search(self, search_text: str | None, offset: Any, count: Any) -> dict:
        """contacts.search: contacts whose name, email or phone contains `search_text`
        (case-insensitively), oldest first; `count` as every Rocket.Chat list reads it."""
        offset, count = page_window(offset, count)
        needle = (search_text or "").strip().casefold()
        found = [c for c in self._contacts.all() if not needle or _matches(c, needle)]
        page = found[offset : offset + count]
        return {
            "contacts": [self._with_manager(_shown(c)) for c in page],
            "count": len(page),
            "offset": offset,
            "total": len(found),
        }

    def get(self, contact_id: str) -> dict:
        """contacts.get: the contact, or None when there is no such contact."""
        contact = self._contacts.get(contact_id)
        return {"contact": None if contact is None else _shown(contact)}

    def _with_manager(self, contact: dict) -> dict:
        manager_id = contact.get("contactManager")
        if not manager_id:
            return contact
        user = self._users.get(manager_id)
        if user is None:
            return {k: v for k, v in contact.items() if k != "contactManager"}
        manager = {"_id": user["_id"], "username": user["username"], "name": user.get("name")}
        return {**contact, "contactManager": manager}


def _shown(contact: dict) -> dict:
    return {k: v for k, v in contact.items() if k not in _HIDDEN}


def _matches(contact: dict, needle: str) -> bool:
    values = [contact.get("name") or ""]
    values += [e.get("address") or "" for e in contact.get("emails") or []]
    values += [p.get("phoneNumber") or "" for p in contact.get("phones") or []]
    return any(needle in value.casefold() for value in values)
