"""import.addUsers as Rocket.Chat clients call it: passwords and Rocket.Chat's default roles."""

from __future__ import annotations

from tests.api.test_import_accounts import user_info
from tests.api.test_import_api import state_is, wait_for
from tests.conftest import log_in

ROCKET_CHAT_ROLES = [
    "user",
    "bot",
    "guest",
    "moderator",
    "owner",
    "leader",
    "app",
    "livechat-agent",
    "livechat-manager",
]


def add_and_run(client, admin, users: list[dict]) -> dict:
    client.post("/api/v1/import.new", headers=admin.headers)
    added = client.post("/api/v1/import.addUsers", headers=admin.headers, json={"users": users})
    assert added.json() == {"success": True}, added.text
    assert client.post("/api/v1/import.run", headers=admin.headers).json() == {"success": True}
    return wait_for(client, admin, state_is("done", "error"))["operation"]


def test_an_imported_user_logs_in_with_the_password_given(client, admin):
    add_and_run(
        client,
        admin,
        [
            {
                "emails": ["gina@example.test"],
                "importIds": ["g"],
                "username": "gina",
                "password": "imported-pass-1",
            },
            {"emails": ["hal@example.test"], "importIds": ["h"], "username": "hal"},
        ],
    )

    gina = log_in(client, "gina", "imported-pass-1")
    me = client.get("/api/v1/me", headers=gina.headers).json()
    assert me["username"] == "gina"
    wrong = client.post("/api/v1/login", json={"user": "gina", "password": "something-else"})
    assert wrong.status_code == 401
    # Without a password the user cannot log in until an admin sets one.
    nobody = client.post("/api/v1/login", json={"user": "hal", "password": "imported-pass-1"})
    assert nobody.status_code == 401
    shown = user_info(client, admin, "gina")
    assert shown["canLogIn"] is True
    assert "password" not in shown and "passwordHash" not in shown


def test_the_password_is_never_stored_in_clear(config, client, admin):
    client.post("/api/v1/import.new", headers=admin.headers)
    users = [{"emails": ["ivy@example.test"], "importIds": ["i"], "password": "clear-text-secret"}]
    client.post("/api/v1/import.addUsers", headers=admin.headers, json={"users": users})

    selection = client.get("/api/v1/getImportFileData", headers=admin.headers).json()
    assert [user["user_id"] for user in selection["users"]] == ["i"]
    assert "clear-text-secret" not in str(selection)
    stored = [path for path in config.data_dir.rglob("*") if path.is_file()]
    assert stored
    assert not any(b"clear-text-secret" in path.read_bytes() for path in stored)


def test_a_hash_sent_by_the_client_is_not_taken_as_a_password(client, admin):
    add_and_run(
        client,
        admin,
        [
            {
                "emails": ["jo@example.test"],
                "importIds": ["j"],
                "username": "jo",
                "passwordHash": "scrypt$2$1$1$AAAA$AAAA",
            }
        ],
    )
    assert user_info(client, admin, "jo")["canLogIn"] is False


def test_rocket_chat_default_roles_are_accepted_and_grant_nothing_more(client, admin):
    operation = add_and_run(
        client,
        admin,
        [
            {
                "emails": ["kim@example.test"],
                "importIds": ["k"],
                "username": "kim",
                "roles": ROCKET_CHAT_ROLES,
                "password": "imported-pass-2",
            }
        ],
    )

    assert operation["warnings"] == []
    assert sorted(user_info(client, admin, "kim")["roles"]) == sorted(ROCKET_CHAT_ROLES)
    kim = log_in(client, "kim", "imported-pass-2")
    # livechat-manager, moderator and the rest unlock no admin-only call.
    assert client.post("/api/v1/import.new", headers=kim.headers).status_code == 403


def test_an_unknown_role_is_refused_as_rocket_chat_refuses_it(client, admin):
    client.post("/api/v1/import.new", headers=admin.headers)
    users = [{"emails": ["lu@example.test"], "importIds": ["l"], "roles": ["superhero"]}]
    refused = client.post("/api/v1/import.addUsers", headers=admin.headers, json={"users": users})
    assert refused.status_code == 400
    assert refused.json() == {
        "success": False,
        "error": "One or more of the users have been assigned invalid roles.",
    }
