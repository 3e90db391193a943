"""Rocket.Chat's omnichannel contacts file (`contacts.csv` in a CSV export).

The first row names the columns. `name`, `emails` and `phones` (several values joined
by `;`), `manager` (a username) and `id` (the contact's import id) are Rocket.Chat's
columns; any other column is a custom field. A row with no name, email or phone is
skipped, as Rocket.Chat skips it. A row without an `id` gets one made from its content,
so that importing the same file twice addresses the same contacts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ferry.chat.parsers.archive import CappedWarnings
from ferry.chat.parsers.base import Record

CONTACTS_FILE = "contacts.csv"
_KNOWN_COLUMNS = ("name", "emails", "phones", "manager", "id")


def contact_records(
    rows: Iterable[tuple[int, list[str]]], warn: CappedWarnings
) -> Iterable[Record]:
    """Staged contacts from `(line, fields)` rows, the first of them the header."""
    header: list[str] | None = None
    for line, fields in rows:
        if header is None:
            header = fields
            continue
        if len(fields) > len(header):
            warn.row(line, f"{len(fields)} fields but only {len(header)} column names")
            continue
        data = {column: value for column, value in zip(header, fields, strict=False) if column}
        emails = _values(data.get("emails"))
        phones = _values(data.get("phones"))
        name = data.get("name") or ""
        if not (emails or phones or name):
            warn.row(line, "no name, email or phone")
            continue
        import_id = (
            data.get("id")
            or "contact-" + hashlib.sha256("\x1f".join(fields).encode()).hexdigest()[:24]
        )
        yield {
            "importIds": [import_id],
            "name": name,
            "emails": emails,
            "phones": phones,
            "contactManager": data.get("manager") or None,
            "customFields": {k: v for k, v in data.items() if k not in _KNOWN_COLUMNS},
        }


def _values(joined: str | None) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in (joined or "").split(";") if v.strip()))
