"""One password rule on every path that sets a password: users.create, users.update,
the first admin (FERRY_ADMIN_PASSWORD) and the `ferry users` commands' set_password.
A refused password changes nothing and is never repeated back."""

import pytest

from ferry.kernel.errors import MeteorError
from handlers.app import create_app
from tests.conftest import USER_PASSWORD, log_in, make_config
from tests.support.envelope import assert_error

WEAK = ["a", "12345678", "password1234", "Qwerty123456!", "abcdefghijklmnop"]


def refused(response, password: str) -> None:
    body = assert_error(response, 400)
    assert body["errorType"].startswith("error-password-policy-not-met-")
    if len(password) > 3:
        assert password not in response.text


@pytest.mark.parametrize("weak", WEAK)
def test_users_create_refuses_weak_passwords(client, admin, weak):
    new = {"username": "weak", "email": "weak@example.test", "name": "W", "password": weak}
    refused(client.post("/api/v1/users.create", headers=admin.headers, json=new), weak)
    assert_error(client.get("/api/v1/users.info?username=weak", headers=admin.headers), 404)


@pytest.mark.parametrize("weak", WEAK)
def test_users_update_refuses_weak_passwords_and_changes_nothing(client, admin, make_user, weak):
    bob = make_user("bob", ["user"])
    body = {"userId": bob.user_id, "data": {"password": weak, "name": "Robert"}}
    refused(client.post("/api/v1/users.update", headers=admin.headers, json=body), weak)
    assert client.get("/api/v1/me", headers=bob.headers).json()["name"] == "bob"
    log_in(client, "bob", USER_PASSWORD)


def test_the_error_names_the_rule(client, admin):
    new = {"username": "weak", "email": "weak@example.test", "name": "W", "password": "short"}
    response = client.post("/api/v1/users.create", headers=admin.headers, json=new)
    body = assert_error(response, 400, error_type="error-password-policy-not-met-minLength")
    assert "at least 12 characters" in body["error"]


@pytest.mark.parametrize("weak", ["x", "12345678", "letmein12345"])
def test_a_weak_first_admin_password_is_refused(tmp_path, weak):
    app = create_app(make_config(tmp_path / "data"))
    with pytest.raises(MeteorError, match="error-password-policy-not-met"):
        app.services.accounts.ensure_admin("admin", weak)
    assert app.services.accounts.users.count() == 0
    app.services.close()


def test_the_generated_first_admin_password_logs_in(tmp_path):
    app = create_app(make_config(tmp_path / "data"))
    user, password = app.services.accounts.ensure_admin(None, None)
    with app.test_client() as client:
        log_in(client, user["username"], password)
    app.services.close()


def test_set_password_refuses_weak_ones_and_revokes_every_token(app, client, make_user):
    accounts = app.services.accounts
    bob = make_user("bob", ["user"])
    with pytest.raises(MeteorError, match="error-password-policy-not-met-common"):
        accounts.set_password("bob", "dragon123456")
    assert client.get("/api/v1/me", headers=bob.headers).status_code == 200
    accounts.set_password("bob", "a-brand-new-passphrase")
    assert client.get("/api/v1/me", headers=bob.headers).status_code == 401
    log_in(client, "bob", "a-brand-new-passphrase")
