"""The sha256 a completed download records is the sha256 of the file it saved, however
the bytes came: in one body, in parallel ranges, resumed after a pause, or retried after
a body cut short."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from ferry.downloads.fetch_types import SEGMENTS
from tests.conftest import make_config
from tests.support.download_api import record, start
from tests.support.remote import pattern_bytes, wait_until

pytest_plugins = ("tests.support.download_fixtures",)

SIZE = 3 * 1024 * 1024 + 5
ETAG = [("ETag", '"v1"')]


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path / "data", allow_download=True, allow_private_networks=True)


def finished(client, caller, download_id: str) -> dict:
    assert wait_until(
        lambda: record(client, caller, download_id)["status"] in ("completed", "failed"), 30
    )
    return record(client, caller, download_id)


def saved_sha256(files_dir, name: str) -> str:
    return hashlib.sha256((files_dir / "dl" / name).read_bytes()).hexdigest()


def test_a_plain_body_records_its_sha256(client, admin, remote, files_dir):
    url = remote.generated("/plain.bin", SIZE)
    done = finished(client, admin, start(client, admin, url))
    assert done["status"] == "completed"
    assert done["sha256"] == hashlib.sha256(pattern_bytes(SIZE)).hexdigest()
    assert done["sha256"] == saved_sha256(files_dir, "plain.bin")


def test_a_body_of_unknown_length_records_its_sha256(client, admin, remote, files_dir):
    url = remote.generated("/chunked.bin", SIZE, announce=False)
    done = finished(client, admin, start(client, admin, url))
    assert done["sha256"] == hashlib.sha256(pattern_bytes(SIZE)).hexdigest()


def test_a_file_fetched_in_parallel_ranges_records_its_sha256(
    app, client, admin, remote, files_dir, monkeypatch
):
    manager = app.services.downloads
    monkeypatch.setattr(
        manager,
        "_tuning",
        dataclasses.replace(manager._tuning, segmented_min_size=1 << 20, segment_probe_seconds=0),
    )
    url = remote.ranged("/parts.bin", SIZE, validators=ETAG)
    sha1 = hashlib.sha1(pattern_bytes(SIZE)).hexdigest()
    done = finished(client, admin, start(client, admin, url, checksum=f"sha1:{sha1}"))
    assert done["status"] == "completed", done
    assert sum(1 for r in remote.requests if r.headers.get("Range")) == SEGMENTS - 1
    assert done["sha256"] == hashlib.sha256(pattern_bytes(SIZE)).hexdigest()
    assert done["sha256"] == saved_sha256(files_dir, "parts.bin")


def test_a_download_resumed_after_a_pause_records_the_whole_files_sha256(
    client, admin, remote, files_dir
):
    url = remote.ranged("/paused.bin", SIZE, pause=0.02, validators=ETAG)
    download_id = start(client, admin, url)
    assert wait_until(lambda: record(client, admin, download_id)["current_size"] > SIZE // 8)
    paused = client.post(f"/api/v1/downloads/{download_id}/pause", headers=admin.bearer)
    assert paused.status_code == 200, paused.text

    remote.ranged("/paused.bin", SIZE, validators=ETAG)
    resumed = client.post(f"/api/v1/downloads/{download_id}/resume", headers=admin.bearer)
    assert resumed.json()["restarted"] is False
    done = finished(client, admin, download_id)
    assert any(r.headers.get("Range", "").startswith("bytes=") for r in remote.requests)
    assert done["sha256"] == hashlib.sha256(pattern_bytes(SIZE)).hexdigest()
    assert done["sha256"] == saved_sha256(files_dir, "paused.bin")


def test_a_download_retried_after_a_cut_body_records_the_whole_files_sha256(
    client, admin, remote, files_dir
):
    body = pattern_bytes(SIZE)
    url = remote.cut_once("/cut.bin", body, sent=SIZE // 3)
    md5 = hashlib.md5(body).hexdigest()
    download_id = start(client, admin, url, checksum=f"md5:{md5}")
    done = finished(client, admin, download_id)
    assert (done["status"], done["attempts"]) == ("completed", 2)
    assert [bool(r.headers.get("Range")) for r in remote.requests] == [False, True]
    assert done["sha256"] == hashlib.sha256(body).hexdigest()
    assert done["sha256"] == saved_sha256(files_dir, "cut.bin")
