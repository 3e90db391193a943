"""Password guessing is slowed down: repeated failed logins are refused for a while,
per user and per client address, with Rocket.Chat's error codes. The clock is a
test-controlled number, so nothing here sleeps."""

import pytest

from ferry.login_throttle import LoginThrottle
from tests.conftest import ADMIN_PASSWORD
from tests.support.envelope import assert_error


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app):
    clock = Clock()
    app.services.accounts.throttle = LoginThrottle(clock=clock)
    return clock


def attempt(client, user="admin", password="wrong", **headers):
    return client.post("/api/v1/login", json={"user": user, "password": password}, headers=headers)


def is_blocked(response, code: str) -> bool:
    body = assert_error(response, 401)
    return body["error"] == code and body["status"] == "error" and body["message"]


def fail(client, times, user="admin", **headers):
    for _ in range(times):
        body = assert_error(attempt(client, user, **headers), 401)
        assert body["error"] == "Unauthorized"


def test_five_failures_block_even_the_right_password(client, clock):
    fail(client, 5)
    blocked = attempt(client, password=ADMIN_PASSWORD)
    assert is_blocked(blocked, "error-login-blocked-for-user")
    assert int(blocked.headers["Retry-After"]) > 0
    clock.now += 61
    assert attempt(client, password=ADMIN_PASSWORD).status_code == 200


def test_failures_spread_over_more_than_the_window_do_not_block(client, clock):
    for _ in range(10):
        fail(client, 1)
        clock.now += 100
    assert attempt(client, password=ADMIN_PASSWORD).status_code == 200


def test_each_new_block_lasts_longer(client, clock):
    fail(client, 5)
    clock.now += 61
    fail(client, 5)  # second block: two minutes
    clock.now += 61
    assert is_blocked(attempt(client, password=ADMIN_PASSWORD), "error-login-blocked-for-user")
    clock.now += 60
    assert attempt(client, password=ADMIN_PASSWORD).status_code == 200


def test_a_success_resets_the_users_count(client, clock):
    fail(client, 4)
    assert attempt(client, password=ADMIN_PASSWORD).status_code == 200
    fail(client, 4)
    assert attempt(client, password=ADMIN_PASSWORD).status_code == 200


def test_username_and_email_share_one_count(app, client, clock):
    app.services.accounts.create_user(
        "carol", email="carol@example.test", name="Carol", password="carol-password"
    )
    fail(client, 3, user="carol")
    fail(client, 2, user="carol@example.test")
    assert is_blocked(attempt(client, "carol", "carol-password"), "error-login-blocked-for-user")
    # Another user is not affected.
    assert attempt(client, password=ADMIN_PASSWORD).status_code == 200


def test_unknown_names_are_blocked_alike(client, clock):
    fail(client, 5, user="nobody")
    assert is_blocked(attempt(client, "nobody"), "error-login-blocked-for-user")


def test_many_names_from_one_address_block_the_address(client, clock):
    for number in range(20):
        fail(client, 1, user=f"guess-{number}")
    response = attempt(client, password=ADMIN_PASSWORD)
    assert is_blocked(response, "error-login-blocked-for-ip")
    # X-Forwarded-For is ignored: claiming another address changes nothing.
    forged = attempt(client, password=ADMIN_PASSWORD, **{"X-Forwarded-For": "203.0.113.9"})
    assert is_blocked(forged, "error-login-blocked-for-ip")
    clock.now += 61
    assert attempt(client, password=ADMIN_PASSWORD).status_code == 200


def test_a_blocked_login_leaves_existing_sessions_alone(client, admin, clock):
    fail(client, 5)
    assert client.get("/api/v1/me", headers=admin.headers).status_code == 200


def test_the_remembered_keys_stay_bounded():
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    throttle.by_user.max_keys = 100
    for number in range(1000):
        throttle.by_user.failed(f"name:{number}")
    assert len(throttle.by_user._records) == 100
    clock.now += 3601
    throttle.by_user.failed("name:last")
    assert len(throttle.by_user._records) == 1
