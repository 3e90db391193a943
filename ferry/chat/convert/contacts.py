"""Staged omnichannel contacts to Ferry contacts, shaped as Rocket.Chat's createContact
stores them: emails as `{address}`, phones as `{phoneNumber}`, the manager as a user id.

A contact is matched by import id; a matched one is left as it is, so importing the
same file twice creates nothing new. A contact without a name gets Rocket.Chat's
generated visitor name (`guest-<n>`).
"""

from __future__ import annotations

from ferry.chat.convert.record_errors import error_code
from ferry.chat.convert.state import Run
from ferry.kernel.ids import random_id
from ferry.kernel.statuses import ImportStep
from storage.staging import CONTACT

# Bounds on what one contact keeps, as Rocket.Chat's contact fields are bounded.
_MAX_VALUES = 100
_MAX_TEXT = 512
_MAX_CUSTOM_FIELDS = 100


def import_contacts(run: Run) -> None:
    if run.contacts is None:
        return
    run.enter(ImportStep.IMPORTING_CONTACTS)
    created: list[dict] = []
    seen: set[str] = set()
    generated = len(run.contacts.all())
    for records in run.batches(CONTACT):
        for sequence, data in records:
            run.completed += 1
            import_ids = [i for i in data.get("importIds") or [] if isinstance(i, str) and i]
            if not run.selection.wants_contact(import_ids):
                run.report.contacts_skipped += 1
                continue
            try:
                if any(i in seen or run.contacts.id_for_import_id(i) for i in import_ids):
                    run.report.contacts_matched += 1
                    continue
                name = _text(data.get("name"))
                if not name:
                    generated += 1
                    name = f"guest-{generated}"
                created.append(_contact(run, data, import_ids, name))
                seen.update(import_ids)
                run.report.contacts_created += 1
            except Exception as problem:  # noqa: BLE001 - one bad record must not stop a run
                run.fail(CONTACT, sequence, error_code(problem))
        run.checkpoint(lambda: _flush(run, created))
    _flush(run, created)


def _flush(run: Run, created: list[dict]) -> None:
    if run.contacts is not None and created:
        run.contacts.insert_many(created)
        created.clear()


def _contact(run: Run, data: dict, import_ids: list[str], name: str) -> dict:
    # The manager column holds a username, as in Rocket.Chat; an unknown one is dropped.
    username = _text(data.get("contactManager"))
    found = run.users.by_username(username) if username else None
    manager = found["_id"] if found else None
    custom = data.get("customFields") if isinstance(data.get("customFields"), dict) else {}
    return {
        "_id": random_id(),
        "name": name,
        "emails": [{"address": a} for a in _values(data.get("emails"))],
        "phones": [{"phoneNumber": p} for p in _values(data.get("phones"))],
        **({"contactManager": manager} if manager else {}),
        "unknown": False,
        "channels": [],
        "customFields": {
            str(k)[:_MAX_TEXT]: str(v)[:_MAX_TEXT]
            for k, v in list(custom.items())[:_MAX_CUSTOM_FIELDS]
            if v not in (None, "")
        },
        "importIds": import_ids,
        "createdAt": run.now,
        "_updatedAt": run.now,
    }


def _values(values) -> list[str]:
    if not isinstance(values, list):
        return []
    kept = [v.strip()[:_MAX_TEXT] for v in values if isinstance(v, str) and v.strip()]
    return list(dict.fromkeys(kept))[:_MAX_VALUES]


def _text(value) -> str | None:
    return value.strip()[:_MAX_TEXT] if isinstance(value, str) and value.strip() else None
