"""Omnichannel contacts (Rocket.Chat's `rocketchat_livechat_contact`), in `contacts.json`."""

from __future__ import annotations

from collections.abc import Iterable

from tinydb.table import Document

from storage.store import Store, detached


class ContactRepository:
    """Contacts keyed by `_id`, with an index of their import ids."""

    def __init__(self, store: Store):
        self._store = store
        self._by_import_id: dict[str, str] = {}
        with store.lock:
            for contact in self._contacts.all():
                self._index(contact)

    @property
    def _contacts(self):
        return self._store.db("contacts").table("contacts")

    def _index(self, contact: dict) -> None:
        for import_id in contact.get("importIds") or []:
            self._by_import_id.setdefault(import_id, contact["_id"])

    def id_for_import_id(self, import_id: str) -> str | None:
        with self._store.lock:
            return self._by_import_id.get(import_id)

    def insert_many(self, contacts: Iterable[dict]) -> None:
        """Insert new contacts in one write; each must carry a unique `_id`."""
        contacts = [detached(c) for c in contacts]
        if not contacts:
            return
        with self._store.lock:
            self._contacts.insert_multiple(Document(c, doc_id=c["_id"]) for c in contacts)
            for contact in contacts:
                self._index(contact)

    def get(self, contact_id: str) -> dict | None:
        with self._store.lock:
            return detached(self._contacts.get(doc_id=contact_id))

    def all(self) -> list[dict]:
        """Every contact, oldest first; those of one import in the file's order."""
        with self._store.lock:
            contacts = detached(self._contacts.all())
        return sorted(contacts, key=lambda c: c.get("createdAt") or "")
