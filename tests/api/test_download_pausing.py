"""Pausing and resuming through the API: who may, what a finished download answers, and
that a resume goes on from the bytes kept."""

from __future__ import annotations

import pytest

from tests.api.test_downloads_api import active, finished, start
from tests.conftest import make_config
from tests.support.envelope import assert_error
from tests.support.remote import pattern_bytes, wait_until

pytest_plugins = ("tests.support.download_fixtures",)

SIZE = 1 << 20


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path / "data", allow_download=True, allow_private_networks=True)


def post(client, caller, download_id: str, action: str):
    return client.post(f"/api/v1/downloads/{download_id}/{action}", headers=caller.bearer)


def test_pause_then_resume_goes_on_from_the_bytes_kept(client, admin, remote, files_dir):
    url = remote.ranged("/big.bin", SIZE, pause=0.2, validators=[("ETag", '"v1"')])
    download_id = start(client, admin, "big", url)["download_id"]
    assert wait_until(lambda: (active(client, admin) or [{}])[0].get("current_size", 0) > 0)

    paused = post(client, admin, download_id, "pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["download"]["status"] == "paused"
    assert [(d["id"], d["status"]) for d in active(client, admin)] == [(download_id, "paused")]
    assert_error(post(client, admin, download_id, "pause"), 409)

    remote.ranged("/big.bin", SIZE, validators=[("ETag", '"v1"')])
    resumed = post(client, admin, download_id, "resume")
    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    assert body["restarted"] is False and body["resumed_from"] > 0
    assert finished(client, admin, download_id)["status"] == "completed"
    assert (files_dir / "big" / "big.bin").read_bytes() == pattern_bytes(SIZE)
    assert_error(post(client, admin, download_id, "pause"), 409)
    assert_error(post(client, admin, download_id, "resume"), 409)


def test_a_paused_download_is_cancelled_with_delete(client, admin, remote, files_dir):
    download_id = start(client, admin, "s", remote.stall("/stall"))["download_id"]
    assert wait_until(lambda: active(client, admin)[0]["status"] == "downloading")
    assert post(client, admin, download_id, "pause").status_code == 200
    cancelled = client.delete(f"/api/v1/downloads/{download_id}", headers=admin.bearer)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["download"]["status"] == "cancelled"
    assert active(client, admin) == []
    assert_error(client.delete(f"/api/v1/downloads/{download_id}", headers=admin.bearer), 409)


def test_others_downloads_need_manage_all_downloads(client, admin, make_user, remote):
    reader = make_user("reader", ["user"])
    download_id = start(client, admin, "s", remote.stall("/stall"))["download_id"]
    assert wait_until(lambda: active(client, admin)[0]["status"] == "downloading")
    assert_error(post(client, reader, download_id, "pause"), 404)
    assert_error(post(client, reader, "no-such-id", "resume"), 404)
    assert post(client, admin, download_id, "pause").status_code == 200
    assert_error(post(client, reader, download_id, "resume"), 404)
    assert active(client, admin)[0]["status"] == "paused"
