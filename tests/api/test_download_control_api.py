"""Pause, resume and cancel through the API: the answers, the 409s, who may."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import pytest

from tests.conftest import make_config
from tests.support.download_api import record, start
from tests.support.envelope import assert_error
from tests.support.remote import pattern_bytes, wait_until

pytest_plugins = ("tests.support.download_fixtures",)

SIZE = 1 << 20
ETAG = [("ETag", '"v1"')]


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path / "data", allow_download=True, allow_private_networks=True)


def post(client, caller, download_id: str, action: str):
    return client.post(f"/api/v1/downloads/{download_id}/{action}", headers=caller.bearer)


def test_pause_then_resume_finishes_the_file_from_where_it_stopped(
    client, admin, remote, files_dir
):
    url = remote.ranged("/big.bin", SIZE, pause=0.05, validators=ETAG)
    download_id = start(client, admin, url)
    assert wait_until(lambda: record(client, admin, download_id)["current_size"] > SIZE // 8)

    paused = post(client, admin, download_id, "pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["download"]["status"] == "paused"
    listed = client.get("/api/v1/downloads", headers=admin.bearer).json()["downloads"]
    assert [d["status"] for d in listed] == ["paused"]
    assert_error(post(client, admin, download_id, "pause"), 409)

    remote.ranged("/big.bin", SIZE, validators=ETAG)
    resumed = post(client, admin, download_id, "resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["restarted"] is False
    assert wait_until(lambda: record(client, admin, download_id)["status"] == "completed", 30)
    assert (files_dir / "dl" / "big.bin").read_bytes() == pattern_bytes(SIZE)
    assert record(client, admin, download_id)["sha256"] == (
        hashlib.sha256(pattern_bytes(SIZE)).hexdigest()
    )
    assert_error(post(client, admin, download_id, "pause"), 409)
    assert_error(post(client, admin, download_id, "resume"), 409)


def test_a_cancel_answers_cancelled_and_a_second_one_conflicts(client, admin, remote):
    url = remote.ranged("/big.bin", SIZE, pause=0.05, validators=ETAG)
    download_id = start(client, admin, url)
    assert wait_until(lambda: record(client, admin, download_id)["current_size"] > 0)
    assert post(client, admin, download_id, "pause").status_code == 200

    cancelled = client.delete(f"/api/v1/downloads/{download_id}", headers=admin.bearer)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["download"]["status"] == "cancelled"
    assert_error(client.delete(f"/api/v1/downloads/{download_id}", headers=admin.bearer), 409)
    assert_error(post(client, admin, download_id, "resume"), 409)


def test_others_downloads_cannot_be_paused_or_resumed_without_rights(
    client, admin, make_user, remote
):
    ann, bob = make_user("ann", ["user"]), make_user("bob", ["user"])
    url = remote.ranged("/big.bin", SIZE, pause=0.05, validators=ETAG)
    download_id = start(client, ann, url)
    assert_error(post(client, bob, download_id, "pause"), 404)
    assert_error(post(client, bob, download_id, "resume"), 404)
    assert_error(post(client, admin, "no-such-id", "pause"), 404)
    assert post(client, ann, download_id, "pause").status_code == 200
    assert post(client, admin, download_id, "resume").status_code == 200


def test_a_checksum_is_checked_before_the_file_appears(client, admin, remote, files_dir):
    body = b"release notes\n" * 100
    url = remote.file("/notes.txt", body)
    wrong = start(client, admin, url, filename="wrong.txt", checksum="sha256:" + "0" * 64)
    right = start(client, admin, url, checksum="sha1:" + hashlib.sha1(body).hexdigest())
    for download_id in (wrong, right):
        assert wait_until(
            lambda i=download_id: record(client, admin, i)["status"] in ("completed", "failed")
        )
    assert record(client, admin, wrong)["error"] == "CHECKSUM_MISMATCH"
    assert record(client, admin, right)["status"] == "completed"
    assert sorted(p.name for p in (files_dir / "dl").iterdir()) == ["notes.txt"]

    short = client.get(f"/dl?download={quote(url, safe='')}&checksum=md5:abc", headers=admin.bearer)
    assert_error(short, 400, error="INVALID_CHECKSUM")
    unknown = client.get(
        f"/dl?download={quote(url, safe='')}&checksum=crc32:00ff00ff", headers=admin.bearer
    )
    assert_error(unknown, 400)


def test_a_batch_item_may_carry_a_checksum(client, admin, remote):
    body = b"x" * 5000
    url = remote.file("/x.bin", body)
    answer = client.post(
        "/api/v1/downloads",
        headers=admin.bearer,
        json={
            "items": [
                {"url": url, "directory": "b", "checksum": "md5:" + hashlib.md5(body).hexdigest()},
                {"url": url, "directory": "b", "checksum": "md5:1234"},
            ]
        },
    )
    assert answer.status_code == 200, answer.text
    first, second = answer.json()["downloads"]
    assert first["success"] is True
    assert (second["success"], second["error"]) == (False, "INVALID_CHECKSUM")
    assert wait_until(lambda: record(client, admin, first["download_id"])["status"] == "completed")
