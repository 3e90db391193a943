"""Imported omnichannel contacts: stored once, found again by import id after a restart,
on either backend."""

from __future__ import annotations


def test_contacts_survive_a_restart_with_their_import_ids(backend):
    contacts = backend.open().contacts
    contacts.insert_many(
        [
            {"_id": "k1", "name": "A", "importIds": ["c-a"], "createdAt": "2026-01-02"},
            {"_id": "k0", "name": "B", "importIds": ["c-b"], "createdAt": "2026-01-01"},
        ]
    )
    contacts.insert_many(
        [{"_id": "k2", "name": "C", "importIds": ["c-a"], "createdAt": "2026-01-03"}]
    )
    assert contacts.id_for_import_id("c-a") == "k1"
    contacts.insert_many([])

    reopened = backend.open().contacts
    assert reopened.id_for_import_id("c-b") == "k0"
    assert reopened.id_for_import_id("c-a") == "k1"
    assert reopened.id_for_import_id("c-z") is None
    assert [c["name"] for c in reopened.all()] == ["B", "A", "C"]
    assert reopened.get("k1")["importIds"] == ["c-a"]
    assert reopened.get("nope") is None
