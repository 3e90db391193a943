"""Member lists, rooms.info and users.getPresence as Rocket.Chat clients read them.

The workspace is test_room_access's: Ann and Bo share a private group and a
direct-message room; Cy is only in the public channel.
"""

from __future__ import annotations

from tests.api.test_room_access import team  # noqa: F401  (the shared workspace fixture)
from tests.support.envelope import assert_error

NOT_ALLOWED = {"success": False, "error": "not-allowed", "errorType": "Not Allowed"}


def _get(client, caller, path):
    return client.get(path, headers=caller.headers)


def _ids(client, admin):
    def first(endpoint, key):
        return _get(client, admin, f"/api/v1/{endpoint}").json()[key][0]["_id"]

    return {
        "c": first("channels.list", "channels"),
        "p": first("groups.listAll", "groups"),
        "d": first("im.list.everyone", "ims"),
    }


def test_members_of_each_room_type_are_short_offline_profiles(team):  # noqa: F811
    app, client, who = team
    ids = _ids(client, who["admin"])
    ann = who["ann"]
    general = _get(client, ann, "/api/v1/channels.members?roomName=general").json()
    assert [m["username"] for m in general["members"]] == ["ann", "bo", "cy"]
    assert general["total"] == 3 and general["success"] is True
    for member in general["members"]:
        assert set(member) <= {"_id", "username", "name", "status"}
        assert member["status"] == "offline"
    group = _get(client, ann, f"/api/v1/groups.members?roomId={ids['p']}").json()
    assert [m["username"] for m in group["members"]] == ["ann", "bo"]
    direct = _get(client, ann, f"/api/v1/dm.members?roomId={ids['d']}").json()
    assert [m["username"] for m in direct["members"]] == ["ann", "bo"]
    page = _get(client, ann, "/api/v1/channels.members?roomName=general&offset=1&count=1").json()
    assert [m["username"] for m in page["members"]] == ["bo"]
    assert (page["count"], page["offset"], page["total"]) == (1, 1, 3)


def test_non_members_get_the_missing_room_error_for_member_lists(team):  # noqa: F811
    app, client, who = team
    ids = _ids(client, who["admin"])
    cy = who["cy"]
    for hidden, missing in [
        (f"groups.members?roomId={ids['p']}", "groups.members?roomId=nope"),
        (f"im.members?roomId={ids['d']}", "im.members?roomId=nope"),
    ]:
        refused = assert_error(_get(client, cy, f"/api/v1/{hidden}"), 400)
        assert refused["errorType"] == "error-room-not-found"
        assert refused == assert_error(_get(client, cy, f"/api/v1/{missing}"), 400)
    # A group is not a channel: channels.members does not reveal it.
    refused = assert_error(
        _get(client, who["ann"], f"/api/v1/channels.members?roomId={ids['p']}"), 400
    )
    assert refused["errorType"] == "error-room-not-found"


def test_rooms_info_answers_any_readable_room_and_not_allowed_otherwise(team):  # noqa: F811
    app, client, who = team
    ids = _ids(client, who["admin"])
    ann, cy = who["ann"], who["cy"]
    for room_type, room_id in ids.items():
        body = _get(client, ann, f"/api/v1/rooms.info?roomId={room_id}").json()
        assert body["success"] is True and body["room"]["t"] == room_type
    assert _get(client, cy, "/api/v1/rooms.info?roomName=general").json()["room"]["_id"] == ids["c"]
    for path in (
        f"rooms.info?roomId={ids['p']}",
        f"rooms.info?roomId={ids['d']}",
        "rooms.info?roomId=nope",
    ):
        response = _get(client, cy, f"/api/v1/{path}")
        assert response.status_code == 400
        assert response.json() == NOT_ALLOWED


def test_presence_is_offline_for_known_users_only(team):  # noqa: F811
    app, client, who = team
    ann = who["ann"]
    for query in (f"userId={who['bo'].user_id}", "username=bo"):
        body = _get(client, ann, f"/api/v1/users.getPresence?{query}").json()
        assert body == {"presence": "offline", "success": True}
    refused = assert_error(_get(client, ann, "/api/v1/users.getPresence?username=nobody"), 400)
    assert refused["errorType"] == "error-invalid-user"


def test_room_roles_are_empty_for_readable_rooms_and_roles_list_names_every_role(team):  # noqa: F811
    app, client, who = team
    ids = _ids(client, who["admin"])
    ann, cy = who["ann"], who["cy"]
    assert _get(client, cy, "/api/v1/channels.roles?roomName=general").json() == {
        "roles": [],
        "success": True,
    }
    assert _get(client, ann, f"/api/v1/groups.roles?roomId={ids['p']}").json()["roles"] == []
    refused = assert_error(_get(client, cy, f"/api/v1/groups.roles?roomId={ids['p']}"), 400)
    assert refused["errorType"] == "error-room-not-found"
    roles = _get(client, cy, "/api/v1/roles.list").json()["roles"]
    assert {"admin", "user", "bot"} <= {role["name"] for role in roles}
    assert all(role["_id"] == role["name"] for role in roles)
    scopes = {role["_id"]: role["scope"] for role in roles}
    assert scopes["admin"] == "Users" and scopes["owner"] == "Subscriptions"
