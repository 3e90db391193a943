"""Pausing, resuming and cancelling a download, and a planned stop that keeps it."""

from __future__ import annotations

import hashlib

import pytest

from ferry.downloads.checksums import Checksum
from ferry.downloads.fetch_types import TransferTuning
from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import CHECKSUM_MISMATCH, SERVER_STOPPED
from storage.downloads import DownloadRepository
from storage.store import Store
from tests.support.downloads import LOCAL, listing
from tests.support.remote import pattern_bytes, wait_until

pytest_plugins = ("tests.support.download_fixtures",)

SIZE = 1 << 20
ETAG = [("ETag", '"v1"')]
# Small resume margin: a resume asks again for little more than what is missing.
TUNING = TransferTuning(resume_margin=1 << 12, checkpoint_after_bytes=1)


@pytest.fixture
def state(tmp_path):
    return tmp_path / "state"


def open_manager(state, **options) -> tuple[DownloadManager, Store]:
    store = Store(state, fsync=False)
    manager = DownloadManager(DownloadRepository(store), LOCAL, tuning=TUNING, **options)
    manager.startup(resume=True)
    return manager, store


@pytest.fixture
def running(state):
    opened: list[tuple[DownloadManager, Store]] = []

    def make(**options) -> DownloadManager:
        pair = open_manager(state, **options)
        opened.append(pair)
        return pair[0]

    yield make
    for manager, store in opened:
        manager.shutdown(timeout=10)
        store.close()


def half_way(manager: DownloadManager, record_id: str) -> bool:
    return wait_until(lambda: manager.get(record_id)["current_size"] >= SIZE // 4)


def ranges_asked(remote, path: str) -> list[str | None]:
    return [r.headers.get("Range") for r in remote.requests if r.path == path]


def test_a_paused_download_keeps_its_bytes_and_resumes_by_range(remote, target_dir, running):
    slow = remote.ranged("/big.bin", SIZE, pause=0.05, validators=ETAG)
    manager = running()
    handle = manager.start(slow, target_dir, "files")
    assert half_way(manager, handle.id)

    paused = manager.pause(handle.id)
    assert paused["status"] == "paused"
    kept = paused["current_size"]
    assert kept >= SIZE // 4
    assert [r["status"] for r in manager.active()] == ["paused"]
    assert [n for n in listing(target_dir) if n.endswith(".part")]
    assert manager.pause(handle.id) is None

    remote.ranged("/big.bin", SIZE, validators=ETAG)  # fast from now on
    record, restarted = manager.resume(handle.id)
    assert restarted is False and record["status"] == "starting"
    done = handle_wait(manager, handle.id)
    assert done["status"] == "completed"
    assert (target_dir / "big.bin").read_bytes() == pattern_bytes(SIZE)
    assert done["sha256"] == hashlib.sha256(pattern_bytes(SIZE)).hexdigest()
    asked = ranges_asked(remote, "/big.bin")
    assert asked[0] is None and asked[-1] is not None and asked[-1].startswith("bytes=")
    assert len(asked) == 2


def handle_wait(manager: DownloadManager, record_id: str) -> dict:
    assert wait_until(
        lambda: manager.get(record_id)["status"] in ("completed", "failed", "cancelled"),
        timeout=30,
    )
    return manager.get(record_id)


def test_a_paused_download_stays_paused_over_a_restart(remote, target_dir, state):
    slow = remote.ranged("/big.bin", SIZE, pause=0.05, validators=ETAG)
    manager, store = open_manager(state)
    handle = manager.start(slow, target_dir, "files")
    assert half_way(manager, handle.id)
    kept = manager.pause(handle.id)["current_size"]
    manager.shutdown(timeout=10)
    store.close()

    remote.ranged("/big.bin", SIZE, validators=ETAG)
    manager, store = open_manager(state)
    try:
        again = manager.get(handle.id)
        assert (again["status"], again["current_size"]) == ("paused", kept)
        assert [r["id"] for r in manager.active()] == [handle.id]
        _, restarted = manager.resume(handle.id)
        assert restarted is False
        assert handle_wait(manager, handle.id)["status"] == "completed"
        assert (target_dir / "big.bin").read_bytes() == pattern_bytes(SIZE)
    finally:
        manager.shutdown(timeout=10)
        store.close()


def test_a_planned_stop_keeps_a_resumable_download_for_the_next_start(remote, target_dir, state):
    slow = remote.ranged("/big.bin", SIZE, pause=0.05, validators=ETAG)
    manager, store = open_manager(state)
    handle = manager.start(slow, target_dir, "files")
    assert half_way(manager, handle.id)
    manager.shutdown(timeout=10)
    store.close()
    assert [n for n in listing(target_dir) if n.endswith(".part")]

    remote.ranged("/big.bin", SIZE, validators=ETAG)
    manager, store = open_manager(state)
    try:
        assert handle_wait(manager, handle.id)["status"] == "completed"
        assert (target_dir / "big.bin").read_bytes() == pattern_bytes(SIZE)
        asked = ranges_asked(remote, "/big.bin")
        assert len(asked) == 2 and asked[1].startswith("bytes=")
        assert listing(target_dir) == ["big.bin"]
    finally:
        manager.shutdown(timeout=10)
        store.close()


def test_a_planned_stop_ends_a_download_that_cannot_resume(remote, target_dir, state):
    no_validator = remote.ranged("/plain.bin", SIZE, pause=0.05)
    manager, store = open_manager(state)
    handle = manager.start(no_validator, target_dir, "files")
    assert half_way(manager, handle.id)
    manager.shutdown(timeout=10)
    try:
        record = manager.get(handle.id)
        assert (record["status"], record["error"]) == ("failed", SERVER_STOPPED)
        assert listing(target_dir) == []
    finally:
        store.close()


def test_pausing_what_cannot_resume_starts_it_over(remote, target_dir, running):
    no_validator = remote.ranged("/plain.bin", SIZE, pause=0.05)
    manager = running()
    handle = manager.start(no_validator, target_dir, "files")
    assert half_way(manager, handle.id)
    paused = manager.pause(handle.id)
    assert (paused["status"], paused["current_size"]) == ("paused", 0)
    assert listing(target_dir) == []
    remote.ranged("/plain.bin", SIZE)
    _, restarted = manager.resume(handle.id)
    assert restarted is True
    assert handle_wait(manager, handle.id)["status"] == "completed"
    assert (target_dir / "plain.bin").read_bytes() == pattern_bytes(SIZE)


def test_a_cancel_answers_once_stopped_and_reaches_paused_downloads(remote, target_dir, running):
    slow = remote.ranged("/big.bin", SIZE, pause=0.05, validators=ETAG)
    manager = running()
    running_one = manager.start(slow, target_dir, "files")
    paused_one = manager.start(slow, target_dir, "files", filename="second.bin")
    assert half_way(manager, running_one.id) and half_way(manager, paused_one.id)
    manager.pause(paused_one.id)

    assert manager.cancel(running_one.id) is True
    assert manager.get(running_one.id)["status"] == "cancelled"
    assert manager.cancel(paused_one.id) is True
    assert manager.get(paused_one.id)["status"] == "cancelled"
    assert manager.cancel(paused_one.id) is False
    assert manager.resume(paused_one.id) is None
    assert listing(target_dir) == []


def test_a_finished_download_cannot_be_paused(remote, target_dir, running):
    manager = running()
    handle = manager.start(remote.ranged("/small.bin", 1000), target_dir, "files")
    assert handle_wait(manager, handle.id)["status"] == "completed"
    assert manager.pause(handle.id) is None
    assert manager.resume(handle.id) is None


def test_a_matching_checksum_publishes_and_a_wrong_one_publishes_nothing(
    remote, target_dir, running
):
    manager = running()
    url = remote.ranged("/data.bin", 100_000)
    body = pattern_bytes(100_000)
    good = Checksum("md5", hashlib.md5(body).hexdigest())
    wrong = Checksum("sha512", "0" * 128)

    ok = handle_wait(manager, manager.start(url, target_dir, "files", checksum=good).id)
    assert (ok["status"], ok["checksum"]) == ("completed", str(good))
    assert ok["sha256"] == hashlib.sha256(body).hexdigest()

    bad = handle_wait(
        manager, manager.start(url, target_dir, "files", filename="x.bin", checksum=wrong).id
    )
    assert (bad["status"], bad["error"]) == ("failed", CHECKSUM_MISMATCH)
    assert listing(target_dir) == ["data.bin"]


@pytest.mark.parametrize(
    "text",
    ["sha256:abc", "crc32:00000000", "sha1", "md5:" + "g" * 32, ""],
)
def test_a_malformed_checksum_is_refused_with_a_reason(text):
    with pytest.raises(ValueError, match="checksum|hex digits"):
        Checksum.parse(text)
