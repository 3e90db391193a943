"""No read endpoint ever shows what Ferry keeps for itself.

Every GET operation of the spec's `workspace` and `users` tags (and `/api/v1/me`) is
called, as the admin and as a plain member, with every parameter it takes filled in
from the imported workspace; no answer may hold an import id, a stored file record,
Ferry's order key or hidden flag, a password hash, a pending avatar URL, the export's
download token, or a shard's bookkeeping.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.api.threaded_workspace import EXPORT_TOKEN, get, messages_by_text, threads  # noqa: F401

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text())
PRIVATE_KEYS = {
    "importIds",
    "_importFile",
    "_sort",
    "_hidden",
    "password",
    "passwordHash",
    "_pendingAvatarUrl",
    "services",
    # a shard index's fields
    "lo",
    "hi",
    "nv",
    "nm",
    "np",
    "nr",
    "nt",
}
# Binary answers (avatars, files) hold no JSON to walk.
NOT_JSON = {"/api/v1/users.getAvatar", "/avatar/{username}", "/file-upload/{id}/{name}"}


def read_operations() -> list[tuple[str, list[str]]]:
    """`(path, parameter names)` of every read the audit covers."""
    found = []
    for path, item in SPEC["paths"].items():
        operation = item.get("get")
        if operation is None or path in NOT_JSON:
            continue
        if not ({"workspace", "users"} & set(operation.get("tags", [])) or path == "/api/v1/me"):
            continue
        names = []
        for parameter in operation.get("parameters", []):
            if "$ref" in parameter:
                parameter = SPEC["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
            names.append(parameter["name"])
        found.append((path, names))
    return found


def private_keys_in(value, where="") -> list[str]:
    if isinstance(value, dict):
        found = [f"{where}.{key}" for key in value if key in PRIVATE_KEYS]
        for key, inner in value.items():
            found += private_keys_in(inner, f"{where}.{key}")
        return found
    if isinstance(value, list):
        return [
            hit for i, inner in enumerate(value) for hit in private_keys_in(inner, f"{where}[{i}]")
        ]
    return []


def test_the_audit_covers_every_read_of_the_workspace_and_users():
    paths = {path for path, _ in read_operations()}
    assert {
        "/api/v1/channels.history",
        "/api/v1/chat.getMessage",
        "/api/v1/chat.getThreadsList",
        "/api/v1/users.info",
        "/api/v1/subscriptions.get",
        "/api/v1/omnichannel/contacts.search",
    } <= paths
    assert len(paths) >= 33


def test_no_read_answer_holds_a_private_field(threads):  # noqa: F811
    app, client, who = threads
    by_text = messages_by_text(client, who["admin"])
    general = get(client, who["admin"], "channels.info", roomName="general").json()["channel"]
    ann = get(client, who["admin"], "users.info", username="ann").json()["user"]
    # One stored user carries all a user can hide: a hash, import ids, a pending avatar.
    app.services.accounts.users.update(ann["_id"], {"_pendingAvatarUrl": "http://127.0.0.1:9/a"})
    secret = get(client, who["admin"], "groups.info", roomName="secret").json()["group"]
    direct = get(client, who["ann"], "im.list").json()["ims"][0]
    values = {
        "roomName": "general",
        "msgId": by_text[""]["_id"],
        "tmid": by_text["Who reviews the release?"]["_id"],
        "userId": ann["_id"],
        "importId": "U1",
        "includeUserRooms": "true",
        "showThreadMessages": "true",
        "role": "user",
        "count": 100,
    }
    room_of = {"groups.": secret, "im.": direct, "dm.": direct}
    stored_hash = app.services.accounts.users.get(ann["_id"])["password"]
    answered = 0
    for path, names in read_operations():
        for caller in (who["admin"], who["ann"]):
            room = next((r for p, r in room_of.items() if p in path), general)
            filled = {**values, "roomId": room["_id"], "rid": room["_id"]}
            if room is secret:
                filled["roomName"] = "secret"
            query = {name: filled[name] for name in names if name in filled}
            response = client.get(path, headers=caller.headers, params=query)
            if response.status_code != 200:
                continue
            answered += 1
            assert not private_keys_in(response.json()), (path, private_keys_in(response.json()))
            assert EXPORT_TOKEN not in response.text, path
            assert stored_hash not in response.text, path
    # Everything but the admin-only lists for Ann, and contacts.get (no contact).
    assert answered >= 58
