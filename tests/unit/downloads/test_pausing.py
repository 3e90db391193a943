"""Pausing, resuming and a graceful stop: what a download has on disk is kept and gone
on from, under the same id, with only the missing bytes asked for."""

from __future__ import annotations

import pytest

from ferry.downloads.fetch_types import TransferTuning
from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import DOWNLOAD_CANCELLED, SERVER_STOPPED
from storage.downloads import DownloadRepository
from tests.support.downloads import LOCAL, listing
from tests.support.remote import pattern_bytes, wait_until

pytest_plugins = ("tests.support.download_fixtures",)

SIZE = 1 << 20
TUNING = TransferTuning(resume_margin=1 << 16)


@pytest.fixture
def managers(store):
    made: list[DownloadManager] = []

    def make(**options) -> DownloadManager:
        manager = DownloadManager(DownloadRepository(store), LOCAL, tuning=TUNING, **options)
        manager.startup(resume=True)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.shutdown(timeout=10)


def slow_ranged(remote) -> str:
    return remote.ranged("/big.bin", SIZE, pause=0.2, validators=[("ETag", '"v1"')])


def part_files(directory) -> list[str]:
    return [name for name in listing(directory) if name.endswith(".part")]


def halfway(manager: DownloadManager, record_id: str) -> bool:
    return wait_until(lambda: manager.get(record_id)["current_size"] >= SIZE // 4)


def ranges_asked(remote, since: int) -> list[tuple[str | None, str | None]]:
    return [(r.headers.get("Range"), r.headers.get("If-Range")) for r in remote.requests[since:]]


def test_a_paused_download_resumes_after_a_restart_from_its_part_file(managers, remote, target_dir):
    first = managers()
    handle = first.start(slow_ranged(remote), target_dir, "files")
    assert halfway(first, handle.id)
    paused = first.pause(handle.id)
    assert paused["status"] == "paused"
    assert [r["id"] for r in first.active()] == [handle.id]
    assert len(part_files(target_dir)) == 1
    first.shutdown(timeout=10)

    second = managers()
    assert second.get(handle.id)["status"] == "paused"
    assert [r["status"] for r in second.active()] == ["paused"]
    remote.ranged("/big.bin", SIZE, validators=[("ETag", '"v1"')])  # no longer slow
    asked_before = len(remote.requests)
    resumed = second.resume(handle.id)
    assert resumed["restarted"] is False
    assert resumed["resumed_from"] >= SIZE // 4
    assert wait_until(lambda: second.get(handle.id)["status"] == "completed")
    assert (target_dir / "big.bin").read_bytes() == pattern_bytes(SIZE)
    asked = ranges_asked(remote, asked_before)
    assert len(asked) == 1
    assert asked[0][1] == '"v1"' and asked[0][0] != "bytes=0-"
    assert second.resume(handle.id) is None


def test_a_download_the_server_cannot_resume_starts_over(managers, remote, target_dir):
    manager = managers()
    handle = manager.start(remote.stall("/stall"), target_dir, "files")
    handle.wait_for_headers(10)
    assert manager.pause(handle.id)["status"] == "paused"
    assert part_files(target_dir) == []
    remote.file("/stall", b"whole")
    resumed = manager.resume(handle.id)
    assert (resumed["restarted"], resumed["resumed_from"]) == (True, 0)
    assert wait_until(lambda: manager.get(handle.id)["status"] == "completed")
    assert (target_dir / "stall").read_bytes() == b"whole"


def test_cancelling_a_paused_download_removes_its_part_file(managers, remote, target_dir):
    manager = managers()
    handle = manager.start(slow_ranged(remote), target_dir, "files")
    assert halfway(manager, handle.id)
    manager.pause(handle.id)
    assert manager.cancel(handle.id)
    record = manager.get(handle.id)
    assert (record["status"], record["error"]) == ("cancelled", DOWNLOAD_CANCELLED)
    assert listing(target_dir) == []
    assert manager.active() == []
    assert manager.cancel(handle.id) is False
    assert manager.resume(handle.id) is None


def test_a_finished_download_cannot_be_paused(managers, remote, target_dir):
    manager = managers()
    handle = manager.start(remote.file("/done.txt", b"done"), target_dir, "files")
    handle.wait(10)
    assert manager.pause(handle.id) is None
    assert manager.pause("no-such-id") is None


def test_a_cancel_answers_once_the_transfer_has_stopped(managers, remote, target_dir):
    manager = managers()
    handle = manager.start(remote.stall("/stall"), target_dir, "files")
    handle.wait_for_headers(10)
    assert manager.cancel(handle.id)
    assert manager.get(handle.id)["status"] == "cancelled"
    assert manager.cancel(handle.id) is False


def test_a_shutdown_keeps_a_resumable_download_for_the_next_start(managers, remote, target_dir):
    first = managers()
    handle = first.start(slow_ranged(remote), target_dir, "files")
    assert halfway(first, handle.id)
    first.shutdown(timeout=10)
    assert len(part_files(target_dir)) == 1
    assert first.get(handle.id)["status"] == "downloading"

    remote.ranged("/big.bin", SIZE, validators=[("ETag", '"v1"')])
    asked_before = len(remote.requests)
    second = managers()
    assert wait_until(lambda: second.get(handle.id)["status"] == "completed")
    assert (target_dir / "big.bin").read_bytes() == pattern_bytes(SIZE)
    asked = ranges_asked(remote, asked_before)
    assert len(asked) == 1 and asked[0][0] != "bytes=0-"


def test_a_shutdown_fails_a_download_that_cannot_resume(managers, remote, target_dir):
    manager = managers()
    handle = manager.start(remote.stall("/stall"), target_dir, "files")
    handle.wait_for_headers(10)
    manager.shutdown(timeout=10)
    record = manager.get(handle.id)
    assert (record["status"], record["error"]) == ("failed", SERVER_STOPPED)
    assert listing(target_dir) == []
