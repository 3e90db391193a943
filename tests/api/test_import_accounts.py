"""Imports never take over existing accounts: the attacks of a hostile export, through the API."""

from __future__ import annotations

import base64

from tests.api.test_import_api import import_everything, state_is, wait_for
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, log_in

HEADER = "username,email,status,billing-active,has-2fa,has-sso,userid,fullname,displayname\n"


def import_slack_users(client, admin, rows: list[str]) -> dict:
    """Upload a Slack member list, import every row, and return the finished operation."""
    csv = (HEADER + "".join(f"{row}\n" for row in rows)).encode()
    uploaded = client.post(
        "/api/v1/uploadImportFile",
        headers=admin.headers,
        json={
            "binaryContent": base64.b64encode(csv).decode(),
            "contentType": "text/csv",
            "fileName": "members.csv",
            "importerKey": "slack-users",
        },
    )
    assert uploaded.json() == {"success": True}
    wait_for(client, admin, state_is("ready", "error"))
    return import_everything(client, admin)["operation"]


def user_info(client, admin, username: str) -> dict:
    answer = client.get(f"/api/v1/users.info?username={username}", headers=admin.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["user"]


def test_an_admin_row_for_an_existing_plain_user_grants_nothing(client, admin, make_user):
    bob = make_user("bob", ["user"])
    before = user_info(client, admin, "bob")

    operation = import_slack_users(client, admin, ["bob,attacker@evil.example,Admin"])

    # The import only names bob by the row's id, which users.info finds and never shows.
    assert user_info(client, admin, "bob") == before
    found = client.get("/api/v1/users.info?importId=attacker@evil.example", headers=admin.headers)
    assert found.json()["user"] == before
    assert operation["report"]["users_matched"] == 1
    assert operation["warnings"] == [
        "User 'bob' matched the existing account 'bob' by username; its roles and emails were "
        "left as they are (an import never changes an account that already exists)."
    ]
    runs_import = client.post("/api/v1/import.new", headers=bob.headers)
    assert runs_import.status_code == 403
    assert log_in(client, "bob", USER_PASSWORD).user_id == bob.user_id


def test_a_deactivated_row_never_locks_out_an_admin(client, admin, make_user):
    second = make_user("second", ["admin"])

    operation = import_slack_users(
        client,
        admin,
        ["second,x@evil.example,Deactivated", "anyone,admin@evil.example,Deactivated"],
    )

    assert user_info(client, admin, "second")["active"] is True
    assert log_in(client, "second", USER_PASSWORD).user_id == second.user_id
    assert log_in(client, "admin", ADMIN_PASSWORD).user_id == admin.user_id
    assert "its active status and emails were left as they are" in operation["warnings"][0]
    # The row without a match is a new, inactive user.
    assert user_info(client, admin, "anyone")["active"] is False


def test_a_deactivated_row_matching_by_email_leaves_the_account_alone(client, admin, make_user):
    carol = make_user("carol", ["user"])

    operation = import_slack_users(client, admin, ["impostor,carol@example.test,Deactivated"])

    carol_now = user_info(client, admin, "carol")
    assert carol_now["active"] is True and carol_now["username"] == "carol"
    assert log_in(client, "carol@example.test", USER_PASSWORD).user_id == carol.user_id
    assert operation["warnings"] == [
        "User 'impostor' matched the existing account 'carol' by email; its active status, "
        "username and name were left as they are (an import never changes an account that "
        "already exists)."
    ]


def test_a_username_equal_to_a_users_email_never_blocks_their_email_login(client, admin, make_user):
    dave = make_user("dave", ["user"])

    operation = import_slack_users(client, admin, ["dave@example.test,other@evil.example,Member"])

    assert log_in(client, "dave@example.test", USER_PASSWORD).user_id == dave.user_id
    assert log_in(client, "dave", USER_PASSWORD).user_id == dave.user_id
    created = user_info(client, admin, "dave.example.test")
    assert created["emails"] == [{"address": "other@evil.example", "verified": False}]
    assert operation["warnings"][0].startswith(
        "User 'dave@example.test' was created as 'dave.example.test'"
    )


def test_hostile_usernames_become_valid_unique_ones(client, admin):
    rows = [
        "admin,a1@evil.example,Admin",
        "ADMIN,a2@evil.example,Admin",
        '"../../x",a3@evil.example,Member',
        "all,a4@evil.example,Member",
        '"a\tb",a5@evil.example,Member',
        "\u202eadmin,a6@evil.example,Owner",
        "\uff41\uff44\uff4d\uff49\uff4e,a7@evil.example,Admin",
    ]

    operation = import_slack_users(client, admin, rows)

    users = client.get("/api/v1/users.list?count=100", headers=admin.headers).json()["users"]
    by_email = {u["emails"][0]["address"]: u["username"] for u in users if u.get("emails")}
    assert [by_email.get(f"a{n}@evil.example") for n in range(1, 8)] == [
        None,  # matched the admin by username (in any case): nothing changed
        None,
        "x",
        "all-1",
        "a.b",
        "admin-1",
        "admin-2",
    ]
    assert [u["username"] for u in users if "admin" in u["roles"]] == ["admin"]
    assert (operation["report"]["users_created"], operation["report"]["users_matched"]) == (5, 2)
    assert operation["warnings"][1] == (
        "User 'ADMIN' matched the existing account 'admin' by username; its name and emails "
        "were left as they are (an import never changes an account that already exists)."
    )
    assert operation["warnings"][6] == (
        "User '\uff41\uff44\uff4d\uff49\uff4e' was created as 'admin-2': a username is "
        "letters, digits, '.', '_' and '-', is not another user's username or email, and is "
        "not a reserved name."
    )
    assert log_in(client, "admin", ADMIN_PASSWORD).user_id == admin.user_id


def test_import_add_users_cannot_grant_admin_or_change_an_account(client, admin, make_user):
    erin = make_user("erin", ["user"])
    client.post("/api/v1/import.new", headers=admin.headers)
    users = [
        {
            "emails": ["erin@example.test"],
            "importIds": ["e"],
            "username": "erin2",
            "roles": ["admin"],
            "deleted": True,
            "name": "Taken Over",
        },
        {
            "emails": ["fresh@example.test"],
            "importIds": ["f"],
            "username": "fresh",
            "roles": ["admin"],
        },
    ]
    added = client.post("/api/v1/import.addUsers", headers=admin.headers, json={"users": users})
    assert added.json() == {"success": True}
    assert client.post("/api/v1/import.run", headers=admin.headers).json() == {"success": True}
    done = wait_for(client, admin, state_is("done", "error"))

    erin_now = user_info(client, admin, "erin")
    assert (erin_now["roles"], erin_now["active"], erin_now["name"]) == (["user"], True, "erin")
    assert log_in(client, "erin@example.test", USER_PASSWORD).user_id == erin.user_id
    assert user_info(client, admin, "fresh")["roles"] == ["user"]
    assert done["operation"]["warnings"] == [
        "User 'erin2' matched the existing account 'erin' by email; its roles, active status, "
        "username and name were left as they are (an import never changes an account that "
        "already exists).",
        "User 'fresh' was created without the role(s) 'admin' the export gives it; an import "
        "never grants 'admin' (use roles.addUserToRole).",
    ]
