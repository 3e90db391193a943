"""Logging in and managing users, as a Rocket.Chat client would."""

from tests.conftest import ADMIN_PASSWORD, log_in
from tests.support.envelope import assert_error
from tests.support.postgres import stored_records


def test_login_returns_rocketchat_shape(client):
    response = client.post("/api/v1/login", json={"user": "admin", "password": ADMIN_PASSWORD})
    body = response.json()
    assert body["status"] == "success"
    assert body["data"]["me"]["username"] == "admin"
    assert "password" not in body["data"]["me"]
    assert len(body["data"]["authToken"]) >= 43  # 32 random bytes, base64url


def test_login_accepts_username_field_and_email(client, admin):
    client.post(
        "/api/v1/users.create",
        headers=admin.headers,
        json={
            "username": "alice",
            "email": "Alice@Example.test",
            "name": "Alice",
            "password": "alice-pass-word-1",
        },
    )
    assert (
        client.post(
            "/api/v1/login", json={"username": "alice", "password": "alice-pass-word-1"}
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/api/v1/login", json={"user": "alice@example.test", "password": "alice-pass-word-1"}
        ).status_code
        == 200
    )


def test_wrong_password_and_unknown_user_are_alike(client):
    wrong = client.post("/api/v1/login", json={"user": "admin", "password": "nope"})
    unknown = client.post("/api/v1/login", json={"user": "ghost", "password": "nope"})
    assert_error(wrong, 401)
    assert wrong.json() == unknown.json()


def test_both_auth_styles_work(client, admin):
    assert client.get("/api/v1/me", headers=admin.headers).json()["username"] == "admin"
    assert client.get("/api/v1/me", headers=admin.bearer).json()["username"] == "admin"


def test_logout_revokes_only_that_token(client, admin):
    second = log_in(client, "admin", ADMIN_PASSWORD)
    assert client.post("/api/v1/logout", headers=admin.headers).json()["status"] == "success"
    assert client.get("/api/v1/me", headers=admin.headers).status_code == 401
    assert client.get("/api/v1/me", headers=second.bearer).status_code == 200


def test_tokens_are_stored_only_as_hashes(app, admin):
    state = stored_records(app.services)
    assert admin.token not in state
    assert ADMIN_PASSWORD not in state


def test_create_info_and_list_users(client, admin):
    created = client.post(
        "/api/v1/users.create",
        headers=admin.headers,
        json={
            "username": "bob",
            "email": "bob@example.test",
            "name": "Bob",
            "password": "bob-pass-word-2",
        },
    ).json()["user"]
    assert created["roles"] == ["user"] and created["canLogIn"] is True
    by_id = client.get(f"/api/v1/users.info?userId={created['_id']}", headers=admin.headers).json()
    by_name = client.get("/api/v1/users.info?username=bob", headers=admin.headers).json()
    assert by_id["user"] == by_name["user"]
    page = client.get("/api/v1/users.list?count=1&offset=1", headers=admin.headers).json()
    assert (page["count"], page["offset"], page["total"]) == (1, 1, 2)
    assert page["users"][0]["username"] == "bob"


def test_users_info_needs_a_key_and_reports_unknown(client, admin):
    assert_error(client.get("/api/v1/users.info", headers=admin.headers), 400)
    assert_error(client.get("/api/v1/users.info?username=ghost", headers=admin.headers), 404)


def test_admin_sets_password_of_a_user(client, admin, app):
    user = app.services.accounts.create_user("imported", email=None, name="I", password=None)
    assert_error(
        client.post("/api/v1/login", json={"user": "imported", "password": "whatever-1"}), 401
    )
    response = client.post(
        "/api/v1/users.update",
        headers=admin.headers,
        json={"userId": user["_id"], "data": {"password": "now-i-can-log-in"}},
    )
    assert response.json()["user"]["canLogIn"] is True
    assert (
        client.post(
            "/api/v1/login", json={"user": "imported", "password": "now-i-can-log-in"}
        ).status_code
        == 200
    )


def test_deactivated_user_cannot_use_their_token(client, admin, make_user):
    bob = make_user("bob", ["user"])
    client.post(
        "/api/v1/users.update",
        headers=admin.headers,
        json={"userId": bob.user_id, "data": {"active": False}},
    )
    assert client.get("/api/v1/me", headers=bob.headers).status_code == 401


def test_roles_can_be_added_and_removed(client, admin, make_user):
    bob = make_user("bob", ["user"])
    grant = client.post(
        "/api/v1/roles.addUserToRole",
        headers=admin.headers,
        json={"roleName": "admin", "username": "bob"},
    )
    assert grant.json()["role"]["_id"] == "admin"
    assert "admin" in client.get("/api/v1/me", headers=bob.headers).json()["roles"]
    client.post(
        "/api/v1/roles.removeUserFromRole",
        headers=admin.headers,
        json={"roleId": "admin", "username": "bob"},
    )
    assert "admin" not in client.get("/api/v1/me", headers=bob.headers).json()["roles"]


def test_last_admin_cannot_lose_admin(client, admin):
    response = client.post(
        "/api/v1/roles.removeUserFromRole",
        headers=admin.headers,
        json={"roleName": "admin", "username": "admin"},
    )
    assert_error(response, 400, error_type="error-action-not-allowed")
    assert "admin" in client.get("/api/v1/me", headers=admin.headers).json()["roles"]


def test_role_change_needs_a_role_name(client, admin):
    assert_error(
        client.post(
            "/api/v1/roles.addUserToRole", headers=admin.headers, json={"username": "admin"}
        ),
        400,
    )


def test_public_info(client):
    assert client.get("/api/info").json() == {"success": True, "name": "Ferry", "version": "0.1.0"}
