"""An imported workspace read back through Rocket.Chat's room endpoints."""

from urllib.parse import quote

import pytest

from tests.api.test_import_api import csv_export, prepared, state_is, upload, wait_for
from tests.conftest import log_in
from tests.support.envelope import assert_error
from tests.support.importers import build_zip

EVERYTHING = {"input": {"users": {"all": True}, "channels": {"all": True}}}


def import_export(client, admin, path, key):
    upload(client, admin, path, importer_key=key)
    prepared(client, admin)
    client.post("/api/v1/startImport", headers=admin.headers, json=EVERYTHING)
    assert wait_for(client, admin, state_is("done", "error"))["state"] == "done"


@pytest.fixture
def slack_workspace(importing, tmp_path):
    app, client, admin, _ = importing
    users = [
        {"id": "U1", "name": "ann", "profile": {"email": "ann@example.test", "real_name": "Ann"}},
        {"id": "U2", "name": "bo", "profile": {"email": "bo@example.test", "real_name": "Bo"}},
    ]
    channels = [
        {
            "id": "C1",
            "name": "general",
            "creator": "U1",
            "members": ["U1", "U2"],
            "created": 1500000000,
        }
    ]
    groups = [
        {
            "id": "G1",
            "name": "secret",
            "creator": "U1",
            "members": ["U1", "U2"],
            "created": 1500000000,
        }
    ]
    day = [
        {
            "type": "message",
            "user": "U1",
            "text": f"message {i} for <@U2>",
            "ts": f"15000000{10 + i}.000{i}00",
        }
        for i in range(30)
    ]
    day.append({"type": "message", "user": "U2", "text": "same second", "ts": "1500000039.000100"})
    day.append(
        {"type": "message", "user": "U1", "text": "same second, earlier", "ts": "1500000039.000050"}
    )
    export = build_zip(
        tmp_path / "slack.zip",
        {
            "users.json": users,
            "channels.json": channels,
            "groups.json": groups,
            "general/2017-07-14.json": day,
            "secret/2017-07-14.json": [
                {"type": "message", "user": "U2", "text": "psst", "ts": "1500000100.000000"}
            ],
        },
    )
    import_export(client, admin, export, "slack")
    return app, client, admin


def test_channels_list_info_and_history(slack_workspace):
    app, client, admin = slack_workspace
    listed = client.get("/api/v1/channels.list", headers=admin.headers).json()
    assert listed["total"] == 1 and listed["channels"][0]["name"] == "general"
    room_id = listed["channels"][0]["_id"]
    info = client.get("/api/v1/channels.info?roomName=general", headers=admin.headers).json()
    assert info["channel"]["_id"] == room_id
    page = client.get(
        f"/api/v1/channels.history?roomId={room_id}&count=5", headers=admin.headers
    ).json()
    # Microsecond order within one second survives: 39.00029 > 39.0001 > 39.00005.
    newest = [m["msg"] for m in page["messages"][:3]]
    assert newest == ["message 29 for @bo", "same second", "same second, earlier"]
    assert (page["count"], page["offset"], page["total"]) == (5, 0, 32)
    nxt = client.get(
        f"/api/v1/channels.history?roomId={room_id}&count=5&offset=5", headers=admin.headers
    ).json()
    assert not {m["_id"] for m in nxt["messages"]} & {m["_id"] for m in page["messages"]}


def test_history_takes_rocketchats_sort_on_ts(slack_workspace):
    app, client, admin = slack_workspace
    url = "/api/v1/channels.history?roomName=general&count=50"
    newest_first = client.get(url, headers=admin.headers).json()["messages"]
    oldest_first = client.get(url + "&sort=" + quote('{"ts": 1}'), headers=admin.headers).json()[
        "messages"
    ]
    assert [m["_id"] for m in oldest_first] == [m["_id"] for m in reversed(newest_first)]
    body = assert_error(
        client.get(url + "&sort=" + quote('{"msg": 1}'), headers=admin.headers), 400
    )
    assert body["errorType"] == "error-invalid-sort"


def test_history_bounds_are_exclusive_unless_inclusive(slack_workspace):
    app, client, admin = slack_workspace
    room_id = client.get("/api/v1/channels.info?roomName=general", headers=admin.headers).json()[
        "channel"
    ]["_id"]
    bounds = "oldest=1500000010.0&latest=1500000012.0002"
    url = f"/api/v1/channels.history?roomId={room_id}&{bounds}&count=50"
    exclusive = client.get(url, headers=admin.headers).json()["messages"]
    assert [m["msg"].split(" for")[0] for m in exclusive] == ["message 1"]
    inclusive = client.get(url + "&inclusive=true", headers=admin.headers).json()["messages"]
    assert len(inclusive) == 3


def test_every_group_is_listed_for_room_administration_only(slack_workspace):
    # groups.list is the caller's own groups (the admin is in none of the import's);
    # every group is groups.listAll, which needs view-room-administration.
    app, client, admin = slack_workspace
    assert client.get("/api/v1/groups.list", headers=admin.headers).json()["total"] == 0
    groups = client.get("/api/v1/groups.listAll", headers=admin.headers).json()
    assert [g["name"] for g in groups["groups"]] == ["secret"]
    history = client.get(
        f"/api/v1/groups.history?roomId={groups['groups'][0]['_id']}", headers=admin.headers
    ).json()
    assert [m["msg"] for m in history["messages"]] == ["psst"]
    app.services.accounts.create_user("reader", email=None, name="R", password="reader-pass-1")
    reader = log_in(client, "reader", "reader-pass-1")
    assert client.get("/api/v1/channels.list", headers=reader.headers).status_code == 200
    assert_error(client.get("/api/v1/groups.listAll", headers=reader.headers), 403)


def test_unknown_room_has_rocketchats_error(slack_workspace):
    app, client, admin = slack_workspace
    body = assert_error(client.get("/api/v1/channels.info?roomId=nope", headers=admin.headers), 400)
    assert body["errorType"] == "error-room-not-found"
    assert body["error"].endswith("[error-room-not-found]")
    missing = assert_error(client.get("/api/v1/channels.history", headers=admin.headers), 400)
    assert missing["errorType"] == "error-room-param-not-provided"


def test_csv_direct_messages_show_in_im_list_everyone(importing, tmp_path):
    app, client, admin, _ = importing
    import_export(client, admin, csv_export(tmp_path), "csv")
    ims = client.get("/api/v1/im.list.everyone", headers=admin.headers).json()
    assert ims["total"] == 1
    messages = client.get(
        f"/api/v1/im.history?roomId={ims['ims'][0]['_id']}", headers=admin.headers
    ).json()
    assert len(messages["messages"]) == 2


def test_unknown_query_parameters_are_ignored_only_where_rocketchat_ignores_them(
    slack_workspace,
):
    _, client, admin = slack_workspace
    general = client.get(
        "/api/v1/channels.list", headers=admin.headers, params={"count": 50}
    ).json()["channels"][0]
    # Rocket.Chat validates none of these routes' parameters: a cache-buster passes.
    for path, params in (
        ("/api/v1/channels.info", {"roomId": general["_id"]}),
        ("/api/v1/channels.members", {"roomId": general["_id"]}),
        ("/api/v1/groups.list", {}),
        ("/api/v1/im.list", {}),
        ("/api/v1/rooms.get", {}),
        ("/api/v1/roles.list", {}),
        ("/api/v1/me", {}),
    ):
        answer = client.get(path, headers=admin.headers, params={**params, "_": "1733400000"})
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json()["success"] is True
    # Its channels.list and channels.history validate theirs and refuse what they do not know.
    for path, params in (
        ("/api/v1/channels.list", {}),
        ("/api/v1/channels.history", {"roomId": general["_id"]}),
    ):
        answer = client.get(path, headers=admin.headers, params={**params, "_": "1733400000"})
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["success"] is False
