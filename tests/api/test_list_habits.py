"""Rocket.Chat's list habits on the list endpoints (count=0, clamped counts, JSON sort,
query and fields), and users.info by importId with includeUserRooms."""

from __future__ import annotations

import pytest

from tests.api.threaded_workspace import get, threads  # noqa: F401
from tests.support.envelope import assert_error


def test_count_zero_lists_everything_and_a_huge_count_is_clamped(threads):  # noqa: F811
    app, client, who = threads
    for endpoint, key in (
        ("channels.list", "channels"),
        ("users.list", "users"),
        ("groups.listAll", "groups"),
        ("channels.members", "members"),
    ):
        extra = {"roomName": "general"} if endpoint.endswith("members") else {}
        every = get(client, who["admin"], endpoint, count=0, **extra)
        assert every.status_code == 200, every.text
        body = every.json()
        assert body["count"] == body["total"] == len(body[key]) > 0
        clamped = get(client, who["admin"], endpoint, count=10**9, **extra).json()
        assert clamped[key] == body[key]
    history = get(client, who["ann"], "channels.history", roomName="general", count=0).json()
    assert history["count"] == history["total"] == 3


def test_rooms_filter_sort_and_project_as_the_caller_may_read_them(threads):  # noqa: F811
    app, client, who = threads
    found = get(
        client,
        who["cy"],
        "channels.list",
        query='{"name": {"$regex": "^GEN", "$options": "i"}}',
        fields='{"name": 1}',
    ).json()
    assert found["channels"] == [{"_id": found["channels"][0]["_id"], "t": "c", "name": "general"}]
    assert found["total"] == 1
    # A member's own list filters among their rooms only.
    assert get(client, who["cy"], "groups.list", query='{"name": "secret"}').json()["total"] == 0
    assert get(client, who["bo"], "groups.list", query='{"name": "secret"}').json()["total"] == 1
    dropped = get(client, who["ann"], "groups.list", fields='{"lastMessage": 0}').json()
    assert dropped["groups"] and all("lastMessage" not in g for g in dropped["groups"])


def test_users_and_members_sort_and_filter_on_what_the_caller_sees(threads):  # noqa: F811
    app, client, who = threads
    listed = get(
        client,
        who["admin"],
        "users.list",
        sort='{"username": -1}',
        query='{"username": {"$in": ["ann", "bo", "cy"]}}',
    ).json()
    assert [u["username"] for u in listed["users"]] == ["cy", "bo", "ann"]
    # Ann is not shown others' roles, so a filter on roles finds only herself.
    by_role = '{"roles": "user"}'
    assert get(client, who["admin"], "users.list", query=by_role).json()["total"] == 3
    plain = get(client, who["ann"], "users.list", query=by_role)
    assert plain.status_code == 200
    assert [u["username"] for u in plain.json()["users"]] == ["ann"]
    members = get(
        client, who["ann"], "channels.members", roomName="general", sort='{"username": -1}'
    ).json()
    assert [m["username"] for m in members["members"]] == ["cy", "bo", "ann"]
    named = get(
        client,
        who["ann"],
        "channels.members",
        roomName="general",
        query='{"username": {"$regex": "^b"}}',
        fields='{"username": 1}',
    ).json()
    assert [set(m) for m in named["members"]] == [{"_id", "status", "username"}]


@pytest.mark.parametrize(
    ("query", "error_type"),
    [
        ({"sort": "{name"}, "error-invalid-sort"),
        ({"query": '{"$where": "sleep(1)"}'}, "error-invalid-query"),
        ({"query": '{"name": {"$regex": "(a+)+$"}}'}, "error-invalid-query"),
        ({"fields": '{"name": 1, "msgs": 0}'}, "error-invalid-fields"),
    ],
)
def test_malformed_habits_answer_rocket_chats_error_body(threads, query, error_type):  # noqa: F811
    app, client, who = threads
    refused = assert_error(get(client, who["ann"], "channels.list", **query), 400)
    assert refused["errorType"] == error_type
    assert refused["error"].startswith(f"Invalid {error_type.rsplit('-', 1)[1]} parameter")
    assert refused["error"].endswith(f"[{error_type}]")
    assert refused["details"] == {"helperMethod": "parseJsonQuery"}


def test_users_info_by_import_id_and_the_user_s_rooms(threads):  # noqa: F811
    app, client, who = threads
    ann = get(client, who["admin"], "users.info", importId="U1").json()["user"]
    assert ann["username"] == "ann" and "importIds" not in ann and "rooms" not in ann
    mine = get(client, who["ann"], "users.info", username="ann", includeUserRooms="true").json()
    rooms = mine["user"]["rooms"]
    assert [(r["t"], r["name"]) for r in rooms] == [("c", "general"), ("d", "bo"), ("p", "secret")]
    assert all(set(r) == {"_id", "rid", "name", "t", "unread", "roles"} for r in rooms)
    seen_by_admin = get(
        client, who["admin"], "users.info", userId=ann["_id"], includeUserRooms="true"
    ).json()["user"]
    assert [r["name"] for r in seen_by_admin["rooms"]] == ["general", "bo", "secret"]
    # Someone else asking does not learn which private rooms Ann is in.
    seen_by_cy = get(
        client, who["cy"], "users.info", username="ann", includeUserRooms="true"
    ).json()["user"]
    assert "rooms" not in seen_by_cy
    unknown = assert_error(get(client, who["admin"], "users.info", importId="U404"), 404)
    assert unknown["errorType"] == "error-invalid-user"
