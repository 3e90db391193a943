"""Two app instances over one PostgreSQL database: what one writes, the other serves."""

from __future__ import annotations

import pytest

from handlers.app import create_app
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, log_in, make_config
from tests.support.postgres import SKIP_REASON, databases

pytestmark = pytest.mark.skipif(not databases.available, reason=SKIP_REASON)


@pytest.fixture
def two_instances(tmp_path):
    """A started server and a second app on the same database that is never started
    (what `ferry users` is: it reads and writes records, runs nothing)."""
    url = databases.new()
    apps = [create_app(make_config(tmp_path / name, database_url=url)) for name in ("a", "b")]
    apps[0].services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    with apps[0].test_client() as first:
        yield apps, first, apps[1].test_client()
    for app in apps:
        app.services.close()


def test_a_user_created_on_one_instance_logs_in_on_the_other(two_instances):
    _, first, second = two_instances
    admin = log_in(first, "admin", ADMIN_PASSWORD)
    created = first.post(
        "/api/v1/users.create",
        headers=admin.headers,
        json={
            "username": "carol",
            "email": "carol@example.com",
            "password": USER_PASSWORD,
            "name": "Carol",
        },
    )
    assert created.status_code == 200
    carol = log_in(second, "carol", USER_PASSWORD)
    assert second.get("/api/v1/me", headers=carol.headers).json()["username"] == "carol"
    # A logout on one instance ends the session on every instance.
    assert first.post("/api/v1/logout", headers=carol.headers).status_code == 200
    assert second.get("/api/v1/me", headers=carol.headers).status_code == 401


def test_a_second_server_starts_beside_the_first_which_alone_clears_import_leftovers(
    two_instances,
):
    apps, _, second_client = two_instances
    apps[1].services.start()
    assert apps[1].services.started
    assert second_client.get("/api/v1/health").status_code == 200
    # A file the first server is decoding is no leftover for the second to remove.
    assert apps[1].services.store.claim_import_recovery() is False
    apps[0].services.close()
    assert apps[1].services.store.claim_import_recovery() is True


def test_health_reports_the_database_and_degrades_without_it(two_instances):
    apps, first, _ = two_instances
    body = first.get("/api/v1/health").json()
    assert body["checks"]["database_reachable"] is True
    apps[0].services.store.reachable = lambda: False
    response = first.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["checks"]["database_reachable"] is False
