"""Downloads as jobs across instances on one PostgreSQL database: an API-only instance
queues them, another instance runs them, and either answers for them."""

from __future__ import annotations

import pytest

from handlers.app import create_app
from tests.api.test_download_control_api import post, record, start
from tests.conftest import ADMIN_PASSWORD, log_in, make_config
from tests.support.postgres import SKIP_REASON, databases
from tests.support.remote import pattern_bytes, wait_until

pytestmark = pytest.mark.skipif(not databases.available, reason=SKIP_REASON)
pytest_plugins = ("tests.support.download_fixtures",)

SIZE = 1 << 20
# Each 64 KiB block comes after this pause: four seconds for the whole file, so that a
# stop asked through the other instance comes while it runs.
PACE = 0.25
ETAG = [("ETag", '"v1"')]


@pytest.fixture
def api_and_worker(tmp_path):
    """Instance A serves the API only; instance B also works jobs. One database, one
    data directory."""
    url = databases.new()
    settings = {
        "database_url": url,
        "allow_download": True,
        "allow_private_networks": True,
    }
    api = create_app(make_config(tmp_path / "data", workers=0, **settings))
    worker = create_app(make_config(tmp_path / "data", **settings))
    api.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    with api.test_client() as api_client, worker.test_client() as worker_client:
        yield api_client, worker_client, tmp_path / "data" / "files" / "dl"
    for app in (api, worker):
        app.services.close()


def test_a_download_queued_on_an_api_only_instance_runs_on_the_other(api_and_worker, remote):
    api, worker, files = api_and_worker
    admin = log_in(api, "admin", ADMIN_PASSWORD)
    url = remote.ranged("/big.bin", SIZE, pause=PACE, validators=ETAG)
    download_id = start(api, admin, url)
    # The worker's progress shows through the API-only instance.
    assert wait_until(lambda: record(api, admin, download_id)["current_size"] > SIZE // 8)

    paused = post(api, admin, download_id, "pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["download"]["status"] == "paused"
    kept = paused.json()["download"]["current_size"]
    assert kept > 0
    assert record(worker, admin, download_id)["status"] == "paused"

    remote.ranged("/big.bin", SIZE, validators=ETAG)
    resumed = post(api, admin, download_id, "resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["restarted"] is False
    assert wait_until(lambda: record(api, admin, download_id)["status"] == "completed", timeout=30)
    assert (files / "big.bin").read_bytes() == pattern_bytes(SIZE)
    asked = [r.headers.get("Range") for r in remote.requests if r.path == "/big.bin"]
    assert asked[0] is None and len(asked) == 2 and asked[1].startswith("bytes=")


def test_a_cancel_through_the_api_only_instance_stops_the_transfer_on_the_other(
    api_and_worker, remote
):
    api, worker, files = api_and_worker
    admin = log_in(api, "admin", ADMIN_PASSWORD)
    download_id = start(api, admin, remote.ranged("/slow.bin", SIZE, pause=PACE))
    assert wait_until(lambda: record(worker, admin, download_id)["current_size"] > 0)
    cancelled = api.delete(f"/api/v1/downloads/{download_id}", headers=admin.bearer)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["download"]["status"] == "cancelled"
    assert record(worker, admin, download_id)["status"] == "cancelled"
    assert wait_until(lambda: list(files.iterdir()) == [])
