"""What `users.list` and `users.info` show of other users: everything to holders of
`view-full-other-user-info` (the admin role) and to the user themself, else only the
public profile Rocket.Chat shows (no emails, roles, import ids, dates, login state)."""

from __future__ import annotations

import pytest

# Rocket.Chat's projections for a caller without the permission.
LISTED = {"_id", "username", "name", "status", "active", "type", "avatarETag"}
PROFILE = LISTED | {"utcOffset", "statusText", "bio"}
PRIVATE = {"emails", "roles", "importIds", "services", "createdAt", "_updatedAt", "canLogIn"}


@pytest.fixture
def dora(app):
    """An imported-looking user with every private field filled in."""
    accounts = app.services.accounts
    user = accounts.create_user(
        "dora", email="dora@example.test", name="Dora", password="dora-password-1"
    )
    accounts.users.update(
        user["_id"],
        {
            "importIds": ["U0DORA"],
            "services": {"slack": {"id": "U0DORA"}},
            "bio": "explorer",
            "statusText": "away on a map",
            "utcOffset": 2,
        },
    )
    return user


def users_of(client, caller) -> dict[str, dict]:
    response = client.get("/api/v1/users.list?count=100", headers=caller.headers)
    assert response.status_code == 200, response.text
    return {user["username"]: user for user in response.json()["users"]}


def info(client, caller, **query) -> dict:
    response = client.get("/api/v1/users.info", params=query, headers=caller.headers)
    assert response.status_code == 200, response.text
    return response.json()["user"]


def test_a_plain_user_sees_only_the_public_profile_of_others(client, make_user, dora):
    bob = make_user("bob", ["user"])

    listed = users_of(client, bob)
    for name in ("admin", "dora"):
        assert set(listed[name]) <= LISTED, listed[name]
        assert {"_id", "username", "active", "type"} <= set(listed[name])
    by_name = info(client, bob, username="dora")
    by_id = info(client, bob, userId=dora["_id"])
    assert by_name == by_id
    assert set(by_name) <= PROFILE and not PRIVATE & set(by_name)
    assert (by_name["bio"], by_name["statusText"], by_name["utcOffset"]) == (
        "explorer",
        "away on a map",
        2,
    )
    assert "emails" not in info(client, bob, username="admin")


def test_a_user_always_sees_themself_whole(client, make_user):
    bob = make_user("bob", ["user"])
    for seen in (
        users_of(client, bob)["bob"],
        info(client, bob, username="bob"),
        info(client, bob, userId=bob.user_id),
        client.get("/api/v1/me", headers=bob.headers).json(),
    ):
        assert seen["emails"] == [{"address": "bob@example.test", "verified": False}]
        assert seen["roles"] == ["user"] and seen["canLogIn"] is True


def test_an_admin_sees_other_users_whole(client, admin, dora):
    for seen in (users_of(client, admin)["dora"], info(client, admin, username="dora")):
        assert seen["emails"][0]["address"] == "dora@example.test"
        assert seen["roles"] == ["user"]
        assert not {"password", "services", "importIds"} & set(seen)
