"""contacts.csv rows to staged contacts, as Rocket.Chat's contact importer reads them."""

from __future__ import annotations

from ferry.chat.parsers.archive import CappedWarnings
from ferry.chat.parsers.contacts import contact_records


def _records(lines: list[list[str]]) -> tuple[list[dict], list[str]]:
    warnings: list[str] = []
    warn = CappedWarnings(warnings.append, "contacts.csv")
    return list(contact_records(enumerate(lines, 1), warn)), warnings


def test_columns_by_header_and_the_rest_are_custom_fields():
    contacts, warnings = _records(
        [
            ["id", "name", "emails", "phones", "manager", "tier"],
            ["c1", "Dana", "a@x.example; b@x.example;a@x.example", "+1;", "bob", "gold"],
        ]
    )
    assert warnings == []
    assert contacts == [
        {
            "importIds": ["c1"],
            "name": "Dana",
            "emails": ["a@x.example", "b@x.example"],
            "phones": ["+1"],
            "contactManager": "bob",
            "customFields": {"tier": "gold"},
        }
    ]


def test_rows_without_identity_or_with_extra_fields_are_skipped_and_said():
    contacts, warnings = _records(
        [
            ["name", "emails"],
            ["", ""],
            ["Eve", "e@x.example", "surplus"],
            ["Fay", ""],
        ]
    )
    assert [c["name"] for c in contacts] == ["Fay"]
    assert warnings == [
        "contacts.csv:2: no name, email or phone; row skipped.",
        "contacts.csv:3: 3 fields but only 2 column names; row skipped.",
    ]


def test_a_row_without_id_gets_the_same_id_every_time():
    rows = [["name", "phones"], ["", "+1555"]]
    first, _ = _records(rows)
    again, _ = _records(rows)
    assert first[0]["importIds"] == again[0]["importIds"]
    assert first[0]["importIds"][0].startswith("contact-")
