"""Downloads as jobs between managers sharing one repository: one that serves the API
only queues them, another claims and runs them, and stops reach across."""

from __future__ import annotations

import pytest

from ferry.downloads.fetch_types import TransferTuning
from ferry.downloads.manager import DownloadManager
from storage.downloads import DownloadRepository
from tests.support.downloads import LOCAL, listing
from tests.support.remote import pattern_bytes, wait_until

pytest_plugins = ("tests.support.download_fixtures",)

SIZE = 1 << 20
ETAG = [("ETag", '"v1"')]
# A tick short enough that a test does not wait on it.
TICK = 0.05


@pytest.fixture
def pair(store):
    """(api, worker): two managers over one repository, as two processes over one
    database; only the second works jobs."""
    repository = DownloadRepository(store)
    tuning = TransferTuning(resume_margin=1 << 12, checkpoint_after_bytes=1)
    api = DownloadManager(repository, LOCAL, works_jobs=False, tick_seconds=TICK, tuning=tuning)
    worker = DownloadManager(repository, LOCAL, tick_seconds=TICK, tuning=tuning)
    for manager in (api, worker):
        manager.startup(resume=True)
    yield api, worker
    for manager in (api, worker):
        manager.shutdown(timeout=10)


def test_a_manager_serving_the_api_only_queues_and_another_runs(pair, remote, target_dir):
    api, worker = pair
    handle = api.start(remote.file("/a.txt", b"alpha"), target_dir, "files")
    assert api.get(handle.id)["status"] == "starting"
    assert wait_until(lambda: api.get(handle.id)["status"] == "completed")
    assert (target_dir / "a.txt").read_bytes() == b"alpha"
    assert worker.get(handle.id) == api.get(handle.id)
    assert api.stats()["starting"] == 0 and worker.stats()["bytes"] == 5


def test_a_cancel_asked_of_the_other_manager_stops_its_transfer(pair, remote, target_dir):
    api, worker = pair
    url = remote.ranged("/slow.bin", SIZE, pause=0.1, validators=ETAG)
    handle = api.start(url, target_dir, "files")
    assert wait_until(lambda: worker.get(handle.id)["current_size"] > 0)
    assert [d["id"] for d in api.active()] == [handle.id]
    assert api.cancel(handle.id)
    assert worker.get(handle.id)["status"] == "cancelled"
    assert listing(target_dir) == []
    assert not api.cancel(handle.id)


def test_a_pause_asked_of_the_other_manager_keeps_the_part_file_for_a_resume(
    pair, remote, target_dir
):
    api, worker = pair
    url = remote.ranged("/slow.bin", SIZE, pause=0.1, validators=ETAG)
    handle = api.start(url, target_dir, "files")
    assert wait_until(lambda: worker.get(handle.id)["current_size"] >= SIZE // 8)
    paused = api.pause(handle.id)
    assert paused["status"] == "paused" and paused["current_size"] > 0
    remote.ranged("/slow.bin", SIZE, validators=ETAG)
    _, restarted = api.resume(handle.id)
    assert restarted is False
    assert wait_until(lambda: api.get(handle.id)["status"] == "completed")
    assert (target_dir / "slow.bin").read_bytes() == pattern_bytes(SIZE)
    asked = [r.headers.get("Range") for r in remote.requests if r.path == "/slow.bin"]
    assert asked[0] is None and asked[1].startswith("bytes=")


def test_a_queued_download_cancelled_before_anyone_claims_it_never_runs(store, remote, target_dir):
    api = DownloadManager(DownloadRepository(store), LOCAL, works_jobs=False)
    api.startup()
    try:
        handle = api.start(remote.file("/never.txt", b"n"), target_dir, "files")
        assert api.cancel(handle.id)
        assert api.get(handle.id)["status"] == "cancelled"
        assert remote.requests == []
    finally:
        api.shutdown(timeout=5)
