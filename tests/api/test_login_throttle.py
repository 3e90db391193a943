"""Password guessing is slowed down without locking the owner out: failed logins are
counted per account and address, per address and per account, and refused for a while
with 429, Rocket.Chat's error codes and `Retry-After`. The clock is a test-controlled
number, so nothing here sleeps."""

import pytest

from ferry.login_throttle import LoginThrottle
from handlers.app import create_app
from tests.conftest import ADMIN_PASSWORD, make_config
from tests.support.envelope import assert_error

# Peers as the server sees them (the test client's default peer is "testclient").
ATTACKER, OWNER, PROXY = "203.0.113.66", "198.51.100.7", "127.0.0.1"


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


def peer(app, address: str):
    """A client of `app` whose requests come from `address`."""
    return app.test_client(client=(address, 50000))


def attempt(client, user="admin", password="wrong", **headers):
    return client.post("/api/v1/login", json={"user": user, "password": password}, headers=headers)


def is_blocked(response, code: str) -> bool:
    body = assert_error(response, 429, error=code)
    assert int(response.headers["Retry-After"]) > 0
    return body["status"] == "error" and bool(body["message"])


def fail(client, times, user="admin", **headers):
    for _ in range(times):
        body = assert_error(attempt(client, user, **headers), 401)
        assert body["error"] == "Unauthorized"


def test_five_failures_block_that_account_from_that_address(client, clock):
    fail(client, 5)
    assert is_blocked(attempt(client, password=ADMIN_PASSWORD), "error-login-blocked-for-user")
    clock.now += 61
    assert attempt(client, password=ADMIN_PASSWORD).status_code == 200


def test_a_lockout_attempt_never_locks_the_owner_out_of_another_address(app, client, clock):
    attacker = peer(app, ATTACKER)
    for _ in range(4):  # every block the attacker earns, at its longest
        fail(attacker, 5)
        assert is_blocked(attempt(attacker), "error-login-blocked-for-user")
        clock.now += 3601
    fail(attacker, 5)
    assert attempt(peer(app, OWNER), password=ADMIN_PASSWORD).status_code == 200
    assert attempt(client, password=ADMIN_PASSWORD).status_code == 200


def test_guessing_from_many_addresses_gets_one_try_per_new_address(app, clock):
    for number in range(2):
        fail(peer(app, f"203.0.113.{number}"), 5)
    # Ten failures for the account: each address that failed for it is refused ...
    newcomer = peer(app, "203.0.113.50")
    fail(newcomer, 1)
    assert is_blocked(attempt(newcomer), "error-login-blocked-for-user")
    # ... even with the right password, while an address with no failures gets in.
    assert is_blocked(attempt(newcomer, password=ADMIN_PASSWORD), "error-login-blocked-for-user")
    assert attempt(peer(app, OWNER), password=ADMIN_PASSWORD).status_code == 200


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


def test_a_success_resets_the_count(client, clock):
    fail(client, 4)
    assert attempt(client, password=ADMIN_PASSWORD).status_code == 200
    fail(client, 4)
    assert attempt(client, password=ADMIN_PASSWORD).status_code == 200


def test_username_and_email_share_one_count(app, client, clock):
    app.services.accounts.create_user(
        "carol", email="carol@example.test", name="Carol", password="carol-pass-word"
    )
    fail(client, 3, user="carol")
    fail(client, 2, user="carol@example.test")
    assert is_blocked(attempt(client, "carol", "carol-pass-word"), "error-login-blocked-for-user")
    # Another user is not affected.
    assert attempt(client, password=ADMIN_PASSWORD).status_code == 200


def test_unknown_names_are_blocked_alike(client, clock):
    fail(client, 5, user="nobody")
    assert is_blocked(attempt(client, "nobody"), "error-login-blocked-for-user")


def test_many_names_from_one_address_block_the_address(app, clock):
    sprayer = peer(app, ATTACKER)
    for number in range(20):
        fail(sprayer, 1, user=f"guess-{number}")
    assert is_blocked(attempt(sprayer, password=ADMIN_PASSWORD), "error-login-blocked-for-ip")
    assert attempt(peer(app, OWNER), password=ADMIN_PASSWORD).status_code == 200
    clock.now += 61
    assert attempt(sprayer, password=ADMIN_PASSWORD).status_code == 200


def test_a_forged_x_forwarded_for_is_ignored_without_trusted_proxies(app, clock):
    local = peer(app, PROXY)
    for number in range(20):
        forged = {"X-Forwarded-For": f"198.51.100.{number}"}
        fail(local, 1, user=f"guess-{number}", **forged)
    fresh = {"X-Forwarded-For": "198.51.100.200"}
    assert is_blocked(
        attempt(local, password=ADMIN_PASSWORD, **fresh), "error-login-blocked-for-ip"
    )


@pytest.fixture
def behind_proxy(tmp_path):
    """An app that trusts X-Forwarded-For from loopback, with a test clock."""
    app = create_app(make_config(tmp_path / "data", trusted_proxies=("127.0.0.0/8",)))
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    clock = Clock()
    app.services.accounts.throttle = LoginThrottle(clock=clock)
    yield app
    app.services.close()


def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(behind_proxy):
    proxy = peer(behind_proxy, PROXY)
    attacker = {"X-Forwarded-For": ATTACKER}
    fail(proxy, 5, **attacker)
    assert is_blocked(
        attempt(proxy, password=ADMIN_PASSWORD, **attacker), "error-login-blocked-for-user"
    )
    # The attacker cannot pose as someone else: the proxy appends the real address.
    posing = {"X-Forwarded-For": f"{OWNER}, {ATTACKER}"}
    assert is_blocked(
        attempt(proxy, password=ADMIN_PASSWORD, **posing), "error-login-blocked-for-user"
    )
    owner = {"X-Forwarded-For": OWNER}
    assert attempt(proxy, password=ADMIN_PASSWORD, **owner).status_code == 200


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(behind_proxy):
    outsider = peer(behind_proxy, ATTACKER)
    fail(outsider, 5, **{"X-Forwarded-For": "127.0.0.1"})
    fresh = {"X-Forwarded-For": OWNER}
    assert is_blocked(
        attempt(outsider, password=ADMIN_PASSWORD, **fresh), "error-login-blocked-for-user"
    )


def test_a_blocked_login_leaves_existing_sessions_alone(client, admin, clock):
    fail(client, 5)
    assert client.get("/api/v1/me", headers=admin.headers).status_code == 200


def test_the_remembered_keys_stay_bounded():
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    throttle.by_pair.max_keys = 100
    for number in range(1000):
        throttle.failed(f"name:{number}", ATTACKER)
    assert len(throttle.by_pair._records) == 100
    clock.now += 3601
    throttle.failed("name:last", ATTACKER)
    assert len(throttle.by_pair._records) == 1
