"""Sessions end when they should: tokens expire after --token-ttl, a new password or a
deactivation revokes them, users.logoutOtherClients keeps one, and an upgrade from
tokens without an expiry logs nobody out but dates every token."""

import time
from datetime import datetime

import orjson
import pytest

from handlers.app import create_app
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, log_in, make_config
from tests.support.envelope import assert_error

NEW_PASSWORD = "a-brand-new-passphrase"
DAY = 86400


def me(client, caller):
    return client.get("/api/v1/me", headers=caller.headers)


def works(client, caller) -> bool:
    response = me(client, caller)
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def update(client, caller, user_id, data):
    return client.post(
        "/api/v1/users.update", headers=caller.headers, json={"userId": user_id, "data": data}
    )


def later(app, seconds: float):
    """Move the accounts' clock `seconds` ahead of the real one."""
    app.services.accounts.clock = lambda: time.time() + seconds


def test_a_token_expires_after_the_ttl(app, client, admin):
    ttl = app.services.config.token_ttl
    assert ttl == 90 * DAY
    later(app, ttl - 60)
    assert works(client, admin)
    later(app, ttl + 1)
    assert_error(me(client, admin), 401, error="unauthorized")
    assert client.get("/api/v1/me", headers=admin.bearer).status_code == 401


def test_the_ttl_is_a_setting(tmp_path):
    app = create_app(make_config(tmp_path / "data", token_ttl=3600))
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    with app.test_client() as client:
        admin = log_in(client, "admin", ADMIN_PASSWORD)
        later(app, 3599)
        assert works(client, admin)
        later(app, 3601)
        assert not works(client, admin)
    app.services.close()


def test_a_new_password_set_by_an_admin_revokes_the_users_tokens(app, client, admin, make_user):
    bob = make_user("bob", ["user"])
    second = log_in(client, "bob", USER_PASSWORD)
    assert update(client, admin, bob.user_id, {"password": NEW_PASSWORD}).status_code == 200
    assert not works(client, bob) and not works(client, second)
    assert works(client, admin)
    assert works(client, log_in(client, "bob", NEW_PASSWORD))


def test_changing_your_own_password_keeps_only_the_session_that_did_it(client, admin):
    elsewhere = log_in(client, "admin", ADMIN_PASSWORD)
    assert update(client, admin, admin.user_id, {"password": NEW_PASSWORD}).status_code == 200
    assert works(client, admin)
    assert not works(client, elsewhere)


def test_other_changes_leave_tokens_alone(client, admin, make_user):
    bob = make_user("bob", ["user"])
    assert update(client, admin, bob.user_id, {"name": "Robert"}).status_code == 200
    assert works(client, bob)


def test_deactivation_revokes_tokens_for_good(client, admin, make_user):
    bob = make_user("bob", ["user"])
    assert update(client, admin, bob.user_id, {"active": False}).status_code == 200
    assert not works(client, bob)
    assert update(client, admin, bob.user_id, {"active": True}).status_code == 200
    assert not works(client, bob)
    assert works(client, log_in(client, "bob", USER_PASSWORD))


def test_logout_other_clients_returns_a_new_token_and_revokes_the_rest(app, client, admin):
    other = log_in(client, "admin", ADMIN_PASSWORD)
    before = time.time()
    response = client.post("/api/v1/users.logoutOtherClients", headers=admin.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["token"] not in (admin.token, other.token)
    assert not works(client, admin) and not works(client, other)
    fresh = client.get("/api/v1/me", headers={**admin.headers, "X-Auth-Token": body["token"]})
    assert fresh.status_code == 200 and fresh.json()["_id"] == admin.user_id
    expires = datetime.fromisoformat(body["tokenExpires"]).timestamp()
    ttl = app.services.config.token_ttl
    assert before + ttl - 5 <= expires <= time.time() + ttl + 5


def test_logout_other_clients_leaves_other_users_alone(client, admin, make_user):
    bob = make_user("bob", ["user"])
    response = client.post("/api/v1/users.logoutOtherClients", headers=bob.headers)
    assert response.status_code == 200
    assert works(client, admin)


def test_logout_other_clients_needs_a_login(client):
    assert_error(client.post("/api/v1/users.logoutOtherClients"), 401)


@pytest.fixture
def upgraded(tmp_path):
    """A data directory with a token stored as before tokens expired, then reopened."""
    config = make_config(tmp_path / "data")
    first = create_app(config)
    user, _ = first.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    token = first.services.accounts.issue_token(user["_id"])
    first.services.close()
    accounts_file = config.state_dir / "accounts.json"
    state = orjson.loads(accounts_file.read_bytes())
    for stored in state["tokens"].values():
        del stored["expiresAt"]
    accounts_file.write_bytes(orjson.dumps(state))
    app = create_app(config)
    yield app, {"X-User-Id": user["_id"], "X-Auth-Token": token}
    app.services.close()


def test_an_upgrade_dates_old_tokens_from_now(upgraded):
    app, headers = upgraded
    with app.test_client() as client:
        assert client.get("/api/v1/me", headers=headers).status_code == 200
        later(app, 90 * DAY - 60)
        assert client.get("/api/v1/me", headers=headers).status_code == 200
        later(app, 90 * DAY + 60)
        assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_expired_tokens_are_dropped_from_storage_at_the_next_login(app, client, admin):
    accounts_file = app.services.config.state_dir / "accounts.json"
    assert len(orjson.loads(accounts_file.read_bytes())["tokens"]) == 1
    later(app, app.services.config.token_ttl + 1)
    log_in(client, "admin", ADMIN_PASSWORD)
    assert len(orjson.loads(accounts_file.read_bytes())["tokens"]) == 1
