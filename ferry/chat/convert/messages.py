"""Staged messages to Ferry messages: authors, mentions, channel references and reactions
resolved to the imported users and rooms, upserted by a stable id."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ferry.chat.convert.record_errors import (
    E_MESSAGE_ROOM,
    E_MESSAGE_TIMESTAMP,
    E_MESSAGE_USER,
    RecordError,
    error_code,
)
from ferry.chat.convert.state import Person, Run
from ferry.chat.convert.values import iso_from_micros, iso_or_none, micros_from_seconds
from ferry.kernel.ids import now_iso
from ferry.kernel.statuses import ImportStep, UserType
from storage.staging import MESSAGE

# Import ids as parsers write them after '@' or '#': never ending in punctuation, so
# "@U123." at the end of a sentence still resolves.
_REFERENCE = re.compile(r"([@#])([0-9A-Za-z]+(?:[._-][0-9A-Za-z]+)*)")
_PASSED_THROUGH = frozenset(
    {
        "t",
        "alias",
        "groupable",
        "_hidden",
        "attachments",
        "bot",
        "emoji",
        "pinned",
        "tshow",
        "tmid",
        "tcount",
        "url",
        "parseUrls",
        "drid",
    }
)


def import_messages(run: Run) -> set[str]:
    run.enter(ImportStep.IMPORTING_MESSAGES)
    with run.workspace.writer() as writer:
        try:
            for records in run.batches(MESSAGE):
                for sequence, data in records:
                    run.completed += 1
                    try:
                        message = _message(run, data)
                    except Exception as problem:  # noqa: BLE001 - see error_code
                        run.fail(MESSAGE, sequence, error_code(problem))
                        continue
                    if message is None:
                        run.report.messages_skipped += 1
                        continue
                    writer.add(message)
                    run.report.messages_imported += 1
                run.checkpoint(lambda: None)
        finally:
            # Also on cancel: what was converted is stored and its rooms stay consistent.
            writer.flush()
            run.workspace.refresh_room_stats(writer.rooms, now_iso())
    return writer.rooms


def _message(run: Run, data: dict) -> dict | None:
    room_import_id = data.get("rid")
    if room_import_id in run.left_out_rooms:
        return None
    place = run.place(room_import_id)
    if place is None:
        raise RecordError(E_MESSAGE_ROOM)
    author = run.person((data.get("u") or {}).get("_id"))
    if author is None:
        raise RecordError(E_MESSAGE_USER)
    micros = micros_from_seconds(data.get("ts"))
    if micros is None:
        raise RecordError(E_MESSAGE_TIMESTAMP)

    text = data.get("msg") or ""
    mentions: dict[str, dict] = {}
    channels: dict[str, dict] = {}
    for reference in data.get("mentions") or []:
        _mention(run, reference, mentions)
    for reference in data.get("channels") or []:
        place_ref = run.place_by_reference(reference)
        if place_ref is not None:
            channels[place_ref.id] = {"_id": place_ref.id, "name": place_ref.name}
    if "@" in text or "#" in text:
        text = _REFERENCE.sub(lambda match: _rewrite(run, match, mentions, channels), text)

    message = {
        "_id": data.get("_id") or _derived_id(place.id, micros, author.id, text),
        "rid": place.id,
        "msg": text,
        "ts": iso_from_micros(micros),
        "_sort": micros,
        "u": {"_id": author.id, "username": author.username, "name": author.name},
        "_updatedAt": run.now,
        "mentions": list(mentions.values()),
        "channels": list(channels.values()),
    }
    for key, value in data.items():
        if key in _PASSED_THROUGH and value is not None:
            message[key] = value
    if data.get("_importFile"):
        message["_importFile"] = dict(data["_importFile"])
    if data.get("reactions"):
        message["reactions"] = _reactions(run, data["reactions"])
    if data.get("replies"):
        replies = [run.person(r) for r in data["replies"]]
        message["replies"] = list(dict.fromkeys(p.id for p in replies if p is not None))
    if data.get("tlm") is not None:
        message["tlm"] = iso_or_none(data["tlm"])
    if data.get("editedAt") is not None:
        message["editedAt"] = iso_or_none(data["editedAt"])
        editor = run.person(data.get("editedBy"))
        if editor is not None:
            message["editedBy"] = {"_id": editor.id, "username": editor.username}
    return message


def _mention(run: Run, reference: Any, mentions: dict[str, dict]) -> Person | None:
    if reference in ("all", "here"):
        mentions[reference] = {"_id": reference, "username": reference, "type": UserType.USER}
        return None
    person = run.person(reference)
    if person is None:
        # Rocket.Chat drops the whole message here (its issue #24664); Ferry keeps it.
        run.report.warnings += 1
        return None
    mentions[person.id] = {
        "_id": person.id,
        "username": person.username,
        "name": person.name,
        "type": UserType.USER,
    }
    return person


def _rewrite(run: Run, match: re.Match, mentions: dict, channels: dict) -> str:
    sigil, reference = match.group(1), match.group(2)
    if sigil == "@":
        if reference in ("all", "here"):
            mentions.setdefault(
                reference, {"_id": reference, "username": reference, "type": UserType.USER}
            )
            return match.group(0)
        person = run.person(reference)
        if person is None:
            return match.group(0)
        mentions.setdefault(
            person.id,
            {
                "_id": person.id,
                "username": person.username,
                "name": person.name,
                "type": UserType.USER,
            },
        )
        return "@" + person.username
    place = run.place(reference)
    if place is None or not place.name:
        return match.group(0)
    channels.setdefault(place.id, {"_id": place.id, "name": place.name})
    return "#" + place.name


def _reactions(run: Run, reactions: Any) -> dict[str, dict]:
    """Staged `{":e:": {name, users}}` or `[{name, users}]` to `{":e:": {usernames}}`."""
    entries = reactions.values() if isinstance(reactions, dict) else reactions
    keys = list(reactions) if isinstance(reactions, dict) else [None] * len(reactions)
    converted: dict[str, dict] = {}
    for key, entry in zip(keys, entries, strict=True):
        name = (entry or {}).get("name") or key
        if not name:
            continue
        name = f":{name.strip(':')}:"
        usernames = converted.setdefault(name, {"usernames": []})["usernames"]
        for reference in (entry or {}).get("users") or []:
            person = run.person(reference)
            if person is not None and person.username not in usernames:
                usernames.append(person.username)
    return converted


def _derived_id(room_id: str, micros: int, author_id: str, text: str) -> str:
    # A message staged without an id still gets the same one on every run.
    digest = hashlib.sha256(f"{room_id}\0{micros}\0{author_id}\0{text}".encode()).hexdigest()
    return f"import-{digest[:24]}"
