"""Who reads which room of an imported workspace, and its files, as Rocket.Chat scopes them.

Ann and Bo share a private group and a direct-message room; Cy is only in the public
channel. Each room carries a file fetched by downloadPendingFiles.
"""

from __future__ import annotations

import pytest

from ferry.chat.attachments import legacy_upload_id
from handlers.app import create_app
from tests.api.test_import_api import prepared, state_is, upload, wait_for
from tests.conftest import ADMIN_PASSWORD, log_in, make_config
from tests.support.envelope import assert_error
from tests.support.importers import build_zip
from tests.support.remote import RemoteServer

PASSWORD = "a-long-room-passphrase-1"
EVERYTHING = {"input": {"users": {"all": True}, "channels": {"all": True}}}
FILES = {"general": b"for everyone", "secret": b"the group's plan", "D1": b"just for bo"}
NAMES = {"general": "public.txt", "secret": "plan.txt", "D1": "note.txt"}


def _export(tmp_path, remote):
    users = [
        {"id": f"U{i}", "name": name, "profile": {"email": f"{name}@example.test"}}
        for i, name in ((1, "ann"), (2, "bo"), (3, "cy"))
    ]

    def room(room_id, name, members):
        return {"id": room_id, "name": name, "creator": "U1", "members": members, "created": 1}

    def day(folder, text):
        url = remote.file(f"/files/{folder}/{NAMES[folder]}", FILES[folder])
        file = {"id": f"F-{folder}", "name": NAMES[folder], "size": 9, "url_private_download": url}
        return [
            {"type": "message", "user": "U1", "text": text, "ts": "1500000001.000100"},
            {"type": "message", "user": "U1", "text": "", "ts": "1500000002.0", "files": [file]},
        ]

    return build_zip(
        tmp_path / "slack.zip",
        {
            "users.json": users,
            "channels.json": [room("C1", "general", ["U1", "U2", "U3"])],
            "groups.json": [room("G1", "secret", ["U1", "U2"])],
            "dms.json": [{"id": "D1", "members": ["U1", "U2"], "created": 1}],
            "general/2017-07-14.json": day("general", "hello all"),
            "secret/2017-07-14.json": day("secret", "psst"),
            "D1/2017-07-14.json": day("D1", "hi bo"),
        },
    )


@pytest.fixture
def team(importing, tmp_path):
    """The imported workspace, its files fetched, and Ann, Bo and Cy logged in."""
    app, client, admin, _ = importing
    with RemoteServer() as remote:
        upload(client, admin, _export(tmp_path, remote), importer_key="slack")
        prepared(client, admin)
        client.post("/api/v1/startImport", headers=admin.headers, json=EVERYTHING)
        assert wait_for(client, admin, state_is("done", "error"))["state"] == "done"
        client.post("/api/v1/downloadPendingFiles", headers=admin.headers, json={})
        wait_for(client, admin, state_is("done"))
    callers = {"admin": admin}
    for name in ("ann", "bo", "cy"):
        app.services.accounts.set_password(name, PASSWORD)
        callers[name] = log_in(client, name, PASSWORD)
    return app, client, callers


def _get(client, caller, path):
    return client.get(path, headers=caller.headers)


def _room_id(client, admin, endpoint, key):
    return _get(client, admin, f"/api/v1/{endpoint}").json()[key][0]["_id"]


def _file_urls(app) -> dict[str, str]:
    """File name -> the URL its message's attachment links to.

    Read from the store, every room at once, whoever may read it.
    """
    workspace = app.services.imports.workspace
    urls = {}
    for room in workspace.rooms(None)[0]:
        for message in workspace.messages(room["_id"]):
            for attachment in message.get("attachments") or []:
                urls[attachment["title"]] = attachment["title_link"]
    return {key: urls[name] for key, name in NAMES.items() if name in urls}


def test_a_member_reads_their_private_group_and_direct_messages(team):
    app, client, who = team
    ann = who["ann"]
    groups = _get(client, ann, "/api/v1/groups.list").json()
    assert [g["name"] for g in groups["groups"]] == ["secret"]
    group_id = groups["groups"][0]["_id"]
    assert _get(client, ann, "/api/v1/groups.info?roomName=secret").json()["group"]["_id"] == (
        group_id
    )
    history = _get(client, ann, f"/api/v1/groups.history?roomId={group_id}").json()
    assert "psst" in [m["msg"] for m in history["messages"]]
    for listing in ("/api/v1/im.list", "/api/v1/dm.list"):
        ims = _get(client, who["bo"], listing).json()
        assert ims["total"] == 1 and sorted(ims["ims"][0]["usernames"]) == ["ann", "bo"]
    dm_id = _get(client, ann, "/api/v1/im.list").json()["ims"][0]["_id"]
    for endpoint in ("im.history", "dm.history"):
        messages = _get(client, ann, f"/api/v1/{endpoint}?roomId={dm_id}").json()["messages"]
        assert "hi bo" in [m["msg"] for m in messages]


def test_a_non_member_gets_the_missing_room_error_for_each_endpoint(team):
    app, client, who = team
    admin, cy = who["admin"], who["cy"]
    group_id = _room_id(client, admin, "groups.listAll", "groups")
    dm_id = _room_id(client, admin, "im.list.everyone", "ims")
    assert _get(client, cy, "/api/v1/groups.list").json()["total"] == 0
    assert _get(client, cy, "/api/v1/im.list").json()["total"] == 0
    assert _get(client, cy, "/api/v1/dm.list").json()["total"] == 0
    for hidden, missing in [
        (f"groups.info?roomId={group_id}", "groups.info?roomId=nope"),
        ("groups.info?roomName=secret", "groups.info?roomName=nope"),
        (f"groups.history?roomId={group_id}", "groups.history?roomId=nope"),
        ("groups.history?roomName=secret", "groups.history?roomName=nope"),
        (f"im.history?roomId={dm_id}", "im.history?roomId=nope"),
        (f"dm.history?roomId={dm_id}", "dm.history?roomId=nope"),
    ]:
        refused = assert_error(_get(client, cy, f"/api/v1/{hidden}"), 400)
        assert refused["errorType"] == "error-room-not-found"
        # A room Cy may not read is indistinguishable from one that does not exist.
        assert refused == assert_error(_get(client, cy, f"/api/v1/{missing}"), 400)
    general = _room_id(client, admin, "channels.list", "channels")
    assert _get(client, cy, f"/api/v1/channels.history?roomId={general}").status_code == 200


@pytest.mark.parametrize(
    ("endpoint", "key"),
    [("groups.listAll", "groups"), ("im.list.everyone", "ims"), ("dm.list.everyone", "ims")],
)
def test_the_workspace_wide_lists_need_room_administration(team, endpoint, key):
    app, client, who = team
    assert_error(_get(client, who["ann"], f"/api/v1/{endpoint}"), 403)
    every = _get(client, who["admin"], f"/api/v1/{endpoint}").json()
    assert every["total"] == 1 and len(every[key]) == 1
    refused = assert_error(_get(client, who["admin"], f"/api/v1/{endpoint}?sort=name"), 400)
    assert refused["errorType"] == "error-invalid-sort"


def test_attachments_are_served_to_those_who_may_read_the_room(team):
    app, client, who = team
    urls = _file_urls(app)
    assert set(urls) == set(FILES)
    assert all(url.startswith("/file-upload/") for url in urls.values())
    for caller in ("ann", "bo", "admin"):
        for key, content in FILES.items():
            response = _get(client, who[caller], urls[key])
            assert (response.status_code, response.content) == (200, content), (caller, key)
    cy = who["cy"]
    assert _get(client, cy, urls["general"]).content == FILES["general"]
    unknown = assert_error(_get(client, cy, "/file-upload/nothing-here/plan.txt"), 404)
    for key in ("secret", "D1"):
        # Cy is told the file does not exist, exactly as for an id that names nothing.
        assert assert_error(_get(client, cy, urls[key]), 404) == unknown
    assert_error(client.get(urls["secret"]), 401)


def test_attachments_honour_range_and_validators(team):
    app, client, who = team
    url = _file_urls(app)["secret"]
    ann = who["ann"].headers
    part = client.get(url, headers={**ann, "Range": "bytes=4-10"})
    assert (part.status_code, part.content) == (206, FILES["secret"][4:11])
    etag = client.get(url, headers=ann).headers["etag"]
    assert client.get(url, headers={**ann, "If-None-Match": etag}).status_code == 304
    assert client.get(url, headers={**ann, "Range": "bytes=999-"}).status_code == 416


def test_the_public_file_tree_serves_no_imported_file(team):
    app, client, who = team
    admin = who["admin"]
    listing = _get(client, admin, "/").json()
    assert "uploads" not in [entry["name"] for entry in listing["entries"]]
    for url in _file_urls(app).values():
        upload_id, name = url.removeprefix("/file-upload/").split("/")
        assert_error(_get(client, admin, f"/uploads/{upload_id}/{name}"), 404)
    assert_error(_get(client, admin, "/file-upload"), 404)


def test_files_an_earlier_version_served_publicly_move_behind_the_room_check(tmp_path):
    # Earlier versions stored pending files in the served tree (files/uploads/<id>/<name>)
    # and pointed their messages at /uploads/...; the next start moves them out.
    config = make_config(tmp_path / "data")
    app = create_app(config)
    accounts = app.services.accounts
    accounts.ensure_admin("admin", ADMIN_PASSWORD)
    ann = accounts.create_user("ann", email=None, name="Ann", password=PASSWORD)
    accounts.create_user("cy", email=None, name="Cy", password=PASSWORD)
    workspace = app.services.imports.workspace
    workspace.insert_rooms([{"_id": "G1", "t": "p", "name": "secret"}])
    workspace.set_members("G1", [ann["_id"]])
    old_url = "/uploads/F.1/plan.txt"
    workspace.upsert_messages(
        [
            {
                "_id": "m1",
                "rid": "G1",
                "msg": "",
                "ts": "2017-07-14T02:40:00.000Z",
                "_sort": 1,
                "u": {"_id": ann["_id"], "username": "ann"},
                "_importFile": {"id": "F.1", "downloadUrl": "https://files.example.test/p"},
                "attachments": [{"title": "plan.txt", "title_link": old_url}],
            }
        ]
    )
    workspace.mark_files_downloaded([("F.1", old_url, None)])
    legacy = config.files_dir / "uploads"
    (legacy / "F1").mkdir(parents=True)
    (legacy / "F1" / "plan.txt").write_bytes(b"the group's plan")
    (legacy / "orphan").mkdir()
    (legacy / "orphan" / "stray.bin").write_bytes(b"no message points here")

    with app.test_client() as client:  # the server's start moves them
        caller = {n: log_in(client, n, PASSWORD) for n in ("ann", "cy")}
        admin = log_in(client, "admin", ADMIN_PASSWORD)
        assert not legacy.exists()
        assert_error(_get(client, admin, "/uploads/F1/plan.txt"), 404)
        message = next(workspace.messages("G1"))
        url = message["attachments"][0]["title_link"]
        assert url.startswith("/file-upload/") and url.endswith("/plan.txt")
        assert message["_importFile"]["rocketChatUrl"] == url
        assert _get(client, caller["ann"], url).content == b"the group's plan"
        assert_error(_get(client, caller["cy"], url), 404)
        # A file no message points at is kept for room administrators only.
        stray = legacy_upload_id("orphan/stray.bin")
        assert _get(client, admin, f"/file-upload/{stray}/stray.bin").status_code == 200
        assert_error(_get(client, caller["ann"], f"/file-upload/{stray}/stray.bin"), 404)
    app.services.close()

    # Once moved, a folder of that name is the user's own: later starts leave it alone.
    (legacy / "mine").mkdir(parents=True)
    (legacy / "mine" / "notes.txt").write_text("mine")
    again = create_app(config)
    with again.test_client():
        assert (legacy / "mine" / "notes.txt").read_text() == "mine"
    again.services.close()
