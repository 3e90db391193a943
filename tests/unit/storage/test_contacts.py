"""Imported omnichannel contacts: stored once, found again by import id after a restart."""

from __future__ import annotations

from storage.contacts import ContactRepository
from storage.store import Store


def test_contacts_survive_a_restart_with_their_import_ids(tmp_path):
    store = Store(tmp_path, fsync=False)
    contacts = ContactRepository(store)
    contacts.insert_many(
        [
            {"_id": "k1", "name": "A", "importIds": ["c-a"], "createdAt": "2026-01-02"},
            {"_id": "k0", "name": "B", "importIds": ["c-b"], "createdAt": "2026-01-01"},
        ]
    )
    assert contacts.id_for_import_id("c-a") == "k1"
    store.close()

    reopened = ContactRepository(Store(tmp_path, fsync=False))
    assert reopened.id_for_import_id("c-b") == "k0"
    assert reopened.id_for_import_id("c-z") is None
    assert [c["name"] for c in reopened.all()] == ["B", "A"]
    assert reopened.get("k1")["importIds"] == ["c-a"]
    assert reopened.get("nope") is None
