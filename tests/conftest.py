"""Fixtures: a fresh app over tmp_path per test, an admin, and helpers to log in as others."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from ferry.kernel.config import Config
from handlers.app import create_app
from storage.store import Store
from tests.support.postgres import BACKEND_VARIABLE, databases

ADMIN_PASSWORD = "admin-password-for-tests"
# What make_user's users log in with; both pass the password rule.
USER_PASSWORD = "user-password-for-tests"
# Scrypt at full cost takes ~50 ms per hash; tests only need the same code path.
TEST_PASSWORD_COST = 2**4


@dataclass
class Caller:
    user_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-User-Id": self.user_id, "X-Auth-Token": self.token}

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_config(data_dir: Path, **overrides) -> Config:
    settings = {
        "data_dir": data_dir,
        "password_cost": TEST_PASSWORD_COST,
        "validate_responses": True,
        # One retry (after at most a second) keeps tests of failing remotes quick while
        # still going through the retry path; tests/unit/downloads/test_retries.py covers more.
        "download_retries": 1,
    }
    if os.environ.get(BACKEND_VARIABLE) == "postgresql":
        settings["database_url"] = databases.new()
    settings.update(overrides)
    return Config(**settings)


@pytest.fixture(scope="session", autouse=True)
def _postgres_cluster():
    """Stops the cluster a test started (if any) when the session ends."""
    yield
    databases.stop()


@pytest.fixture(autouse=True)
def _postgres_databases():
    """Drops the databases a test was given, after its own fixtures closed them."""
    yield
    databases.drop_handed_out()


@pytest.fixture
def store(tmp_path: Path):
    """A state store without fsync; tests that prove durability open their own."""
    store = Store(tmp_path / "state", fsync=False)
    yield store
    store.close()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "data")


@pytest.fixture
def app(config: Config):
    app = create_app(config)
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    yield app
    app.services.close()


@pytest.fixture
def client(app):
    with app.test_client() as test_client:
        yield test_client


@pytest.fixture
def files_dir(config: Config) -> Path:
    return config.files_dir


def log_in(client, username: str, password: str) -> Caller:
    response = client.post("/api/v1/login", json={"user": username, "password": password})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    return Caller(data["userId"], data["authToken"])


@pytest.fixture
def admin(client) -> Caller:
    return log_in(client, "admin", ADMIN_PASSWORD)


@pytest.fixture
def make_user(app, client):
    """make_user(name, roles) -> Caller logged in as a new user with exactly those roles."""

    def make(username: str, roles: list[str]) -> Caller:
        app.services.accounts.create_user(
            username,
            email=f"{username}@example.test",
            name=username,
            password=USER_PASSWORD,
            roles=roles,
        )
        return log_in(client, username, USER_PASSWORD)

    return make
