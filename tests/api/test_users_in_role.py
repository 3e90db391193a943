"""roles.getUsersInRole as Rocket.Chat clients call it."""

from __future__ import annotations

from tests.support.envelope import assert_error


def _in_role(client, caller, query):
    return client.get(f"/api/v1/roles.getUsersInRole?{query}", headers=caller.headers)


def test_lists_the_holders_of_a_role_by_username_without_secrets(client, admin, make_user):
    make_user("zed", ["admin"])
    make_user("amy", ["admin", "user"])
    make_user("bob", ["user"])
    answer = _in_role(client, admin, "role=admin").json()
    assert [u["username"] for u in answer["users"]] == ["admin", "amy", "zed"]
    assert answer["total"] == 3 and answer["success"] is True
    for user in answer["users"]:
        assert set(user) <= {"_id", "username", "name", "emails", "createdAt", "_updatedAt"}
    page = _in_role(client, admin, "role=admin&offset=1&count=1").json()
    assert [u["username"] for u in page["users"]] == ["amy"] and page["total"] == 3
    users = _in_role(client, admin, "role=user&roomId=anything").json()
    assert [u["username"] for u in users["users"]] == ["amy", "bob"]


def test_count_zero_or_too_large_means_the_maximum(client, admin, make_user):
    for number in range(3):
        make_user(f"u{number}", ["bot"])
    for count in (0, 5000):
        answer = _in_role(client, admin, f"role=bot&count={count}").json()
        assert len(answer["users"]) == 3


def test_room_roles_list_nobody_and_unknown_roles_are_refused(client, admin):
    assert _in_role(client, admin, "role=owner&roomId=GENERAL").json()["users"] == []
    refused = assert_error(_in_role(client, admin, "role=emperor"), 400)
    assert refused["errorType"] == "error-invalid-roleId"
    missing = assert_error(_in_role(client, admin, "roomId=GENERAL"), 400)
    assert missing["success"] is False


def test_a_plain_user_may_not_list_role_holders(client, make_user):
    bob = make_user("bob", ["user"])
    assert_error(_in_role(client, bob, "role=admin"), 403)
