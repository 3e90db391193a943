"""The download manager: records, queueing, cancel, shutdown, recovery and history."""

from __future__ import annotations

import hashlib
import time

import pytest

from ferry.downloads.fetch_types import TransferTuning
from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import (
    DOMAIN_BLOCKED,
    DOWNLOAD_CANCELLED,
    DOWNLOAD_TIMEOUT,
    INVALID_URL,
    QUEUE_FULL,
    REMOTE_FILE_NOT_FOUND,
    SERVER_STOPPED,
    FetchError,
    FetchPolicy,
)
from ferry.downloads.records import Owner
from storage.downloads import DownloadRepository
from tests.support.downloads import LOCAL, StubResolver, listing
from tests.support.remote import pattern_bytes, wait_until

BASE_FIELDS = {
    "id",
    "kind",
    "filename",
    "file_path",
    "directory",
    "url",
    "checksum",
    "sha256",
    "attempts",
    "status",
    "current_size",
    "expected_size",
    "progress_percentage",
    "start_time",
    "owner_id",
    "owner_username",
}


ACTIVE_FIELDS = BASE_FIELDS | {"speed", "eta"}


FINISHED_FIELDS = BASE_FIELDS | {"total_bytes", "end_time", "error", "message"}


pytest_plugins = ("tests.support.download_fixtures",)


@pytest.fixture
def managers(store):
    made: list[DownloadManager] = []

    def make(policy: FetchPolicy = LOCAL, **options) -> DownloadManager:
        # Retries of transient failures come at once, so a test of a failure stays quick.
        options.setdefault("tuning", TransferTuning(retry_backoff=0.001))
        manager = DownloadManager(DownloadRepository(store), policy, **options)
        manager.startup()
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.shutdown(timeout=10)


@pytest.fixture
def manager(managers):
    return managers()


def status_of(manager: DownloadManager, record_id: str, status: str) -> bool:
    return wait_until(lambda: manager.get(record_id)["status"] == status)


# --- a download's life ----------------------------------------------------------------


def test_a_download_completes_and_moves_to_history(manager, remote, target_dir):
    url = remote.generated("/data/set.bin", 700_000)
    handle = manager.start(url, target_dir, "files", owner=Owner("u1", "ann"))
    record = handle.wait(10)
    assert set(record) == FINISHED_FIELDS
    assert record == {
        "id": handle.id,
        "kind": "file",
        "filename": "set.bin",
        "file_path": "files/set.bin",
        "directory": "files",
        "url": url,
        "checksum": None,
        "attempts": 1,
        "sha256": hashlib.sha256(pattern_bytes(700_000)).hexdigest(),
        "status": "completed",
        "current_size": 700_000,
        "expected_size": 700_000,
        "progress_percentage": 100.0,
        "start_time": record["start_time"],
        "total_bytes": 700_000,
        "end_time": record["end_time"],
        "error": None,
        "message": "Download completed",
        "owner_id": "u1",
        "owner_username": "ann",
    }
    assert isinstance(record["start_time"], int) and record["end_time"] >= record["start_time"]
    assert manager.active() == []
    assert manager.history() == [record]
    assert listing(target_dir) == ["set.bin"]


def test_the_record_names_the_file_actually_written(manager, remote, target_dir):
    (target_dir / "a.txt").write_bytes(b"mine")
    handle = manager.start(remote.file("/a.txt", b"theirs"), target_dir, "files/")
    record = handle.wait(10)
    assert (record["filename"], record["file_path"]) == ("a (1).txt", "files/a (1).txt")
    assert (target_dir / "a (1).txt").read_bytes() == b"theirs"


def test_files_in_the_root_directory_have_a_bare_path(manager, remote, target_dir):
    record = manager.start(remote.file("/r.txt", b"r"), target_dir, "").wait(10)
    assert (record["directory"], record["file_path"]) == ("", "r.txt")


def test_the_first_record_names_the_file_from_the_url_or_the_caller(manager, remote, target_dir):
    remote.stall("/stall")
    from_url = manager.start(remote.url("/reports/q3.pdf"), target_dir, "files")
    assert manager.get(from_url.id)["filename"] == "q3.pdf"
    chosen = manager.start(remote.url("/stall"), target_dir, "files", filename="../mine.bin")
    assert manager.get(chosen.id)["file_path"] == "files/mine.bin"


def test_active_downloads_show_live_progress(manager, remote, target_dir, store):
    url = remote.stall("/stall", sent_first=300_000, length=1_000_000)
    handle = manager.start(url, target_dir, "files", kind="import")
    assert wait_until(lambda: manager.get(handle.id)["current_size"] == 300_000)
    record = manager.get(handle.id)
    assert set(record) == ACTIVE_FIELDS
    assert (record["owner_id"], record["owner_username"]) == (None, None)  # started by nobody
    assert record["status"] == "downloading"
    assert record["kind"] == "import"
    assert (record["expected_size"], record["progress_percentage"]) == (1_000_000, 30.0)
    assert [r["id"] for r in manager.active("files")] == [handle.id]
    assert manager.active("elsewhere") == []
    # Progress is not written to storage; the state change is.
    stored = DownloadRepository(store).get(handle.id)
    assert (stored["status"], stored["current_size"]) == ("downloading", 0)


def test_unknown_sizes_stay_null(manager, remote, target_dir):
    handle = manager.start(remote.stall("/chunked", length=None), target_dir, "files")
    assert wait_until(lambda: manager.get(handle.id)["current_size"] > 0)
    record = manager.get(handle.id)
    assert (record["expected_size"], record["progress_percentage"], record["eta"]) == (
        None,
        None,
        None,
    )


def test_progress_never_passes_100_percent(manager, remote, target_dir):
    handle = manager.start(remote.trickle("/drip", pieces=30, pause=0.01), target_dir, "files")
    seen = []
    while not handle.done:
        record = manager.get(handle.id)
        if record["progress_percentage"] is not None:
            seen.append(record["progress_percentage"])
        time.sleep(0.005)
    assert seen and all(0 <= p <= 100 for p in seen)
    assert handle.wait(10)["progress_percentage"] == 100.0


def test_finished_callback_gets_the_final_record(manager, remote, target_dir):
    finished = []
    handle = manager.start(
        remote.status("/x", 500), target_dir, "files", on_finished=finished.append
    )
    handle.wait(10)
    assert finished == [manager.get(handle.id)]


# --- failures ---------------------------------------------------------------------------


def test_bad_urls_are_refused_before_anything_is_recorded(managers, remote, target_dir):
    manager = managers(FetchPolicy())
    with pytest.raises(FetchError) as invalid:
        manager.start("ftp://example.com/x", target_dir, "files")
    with pytest.raises(FetchError) as blocked:
        manager.start(remote.url("/x"), target_dir, "files")
    assert (invalid.value.code, blocked.value.code) == (INVALID_URL, DOMAIN_BLOCKED)
    assert manager.history() == [] and manager.active() == []
    assert remote.untouched


def test_waiting_for_headers_reports_early_failures(managers, remote, target_dir):
    remote.status("/missing", 404)
    manager = managers()
    with pytest.raises(FetchError) as missing:
        manager.start(remote.url("/missing"), target_dir, "files").wait_for_headers(10)
    assert missing.value.code == REMOTE_FILE_NOT_FOUND

    strict = managers(FetchPolicy(resolver=StubResolver({"evil.test": ["127.0.0.1"]})))
    handle = strict.start(f"http://evil.test:{remote.port}/x", target_dir, "files")
    with pytest.raises(FetchError) as ssrf:
        handle.wait_for_headers(10)
    assert ssrf.value.code == DOMAIN_BLOCKED
    record = handle.wait(10)
    assert (record["status"], record["error"], record["total_bytes"]) == (
        "failed",
        DOMAIN_BLOCKED,
        None,
    )
    assert "not a public Internet address" in record["message"]
    assert [r.path for r in remote.requests] == ["/missing"]


def test_waiting_for_headers_returns_once_the_body_starts(manager, remote, target_dir):
    handle = manager.start(remote.stall("/stall"), target_dir, "files")
    handle.wait_for_headers(10)
    assert manager.get(handle.id)["status"] == "downloading"


def test_a_per_download_timeout(manager, remote, target_dir):
    handle = manager.start(remote.stall("/stall"), target_dir, "files", timeout=0.3)
    record = handle.wait(10)
    assert (record["status"], record["error"]) == ("failed", DOWNLOAD_TIMEOUT)
    assert listing(target_dir) == []


# --- queueing and stopping ----------------------------------------------------------------


def test_downloads_beyond_the_limit_wait_as_starting(managers, remote, target_dir):
    manager = managers(max_concurrent=2)
    url = remote.stall("/stall")
    handles = [manager.start(url, target_dir, "files") for _ in range(3)]
    assert status_of(manager, handles[1].id, "downloading")
    assert status_of(manager, handles[0].id, "downloading")
    assert manager.get(handles[2].id)["status"] == "starting"
    assert len(remote.requests) == 2

    assert manager.cancel(handles[0].id)
    assert status_of(manager, handles[2].id, "downloading")


def test_a_full_queue_refuses_a_start_before_anything_is_recorded(
    managers, remote, target_dir, store
):
    manager = managers(max_concurrent=2, max_queued=1)
    url = remote.stall("/stall")
    handles = [manager.start(url, target_dir, "files") for _ in range(3)]
    with pytest.raises(FetchError) as refused:
        manager.start(url, target_dir, "files")
    assert refused.value.code == QUEUE_FULL
    assert len(manager.active()) == 3
    recorded = {record["id"] for record in DownloadRepository(store).unfinished()}
    assert recorded == {handle.id for handle in handles}

    # A finished download gives its place back.
    assert manager.cancel(handles[2].id)
    handles[2].wait(10)
    manager.start(url, target_dir, "files")
    for handle in manager.active():
        manager.cancel(handle["id"])


def test_cancelling_a_running_download(manager, remote, target_dir):
    handle = manager.start(remote.stall("/stall"), target_dir, "files")
    handle.wait_for_headers(10)
    assert manager.cancel(handle.id)
    record = handle.wait(10)
    assert (record["status"], record["error"], record["total_bytes"]) == (
        "cancelled",
        DOWNLOAD_CANCELLED,
        None,
    )
    assert listing(target_dir) == []
    assert manager.cancel(handle.id) is False
    assert manager.cancel("no-such-id") is False


def test_cancelling_a_queued_download_never_contacts_the_server(managers, remote, target_dir):
    manager = managers(max_concurrent=1)
    running = manager.start(remote.stall("/stall"), target_dir, "files")
    running.wait_for_headers(10)
    queued = manager.start(remote.url("/queued.bin"), target_dir, "files")
    assert manager.cancel(queued.id)
    assert queued.wait(0)["status"] == "cancelled"
    assert [r.path for r in remote.requests] == ["/stall"]


def test_shutdown_stops_everything_as_server_stopped(managers, remote, target_dir):
    manager = managers(max_concurrent=1)
    running = manager.start(remote.stall("/stall"), target_dir, "files")
    running.wait_for_headers(10)
    queued = manager.start(remote.url("/later"), target_dir, "files")
    manager.shutdown(timeout=10)
    for handle in (running, queued):
        record = manager.get(handle.id)
        assert (record["status"], record["error"]) == ("failed", SERVER_STOPPED)
    assert listing(target_dir) == []
    with pytest.raises(FetchError) as late:
        manager.start(remote.url("/x"), target_dir, "files")
    assert late.value.code == SERVER_STOPPED


def test_history_is_newest_first_and_capped(managers, remote, target_dir):
    manager = managers(history_limit=3)
    ids = []
    for number in range(5):
        handle = manager.start(remote.file(f"/f{number}", b"x"), target_dir, "files")
        handle.wait(10)
        ids.append(handle.id)
    assert [r["id"] for r in manager.history()] == ids[:1:-1]
    assert [r["id"] for r in manager.history(limit=1)] == [ids[-1]]
    assert manager.get(ids[0]) is None


def test_timeouts_must_be_positive(manager, remote, target_dir):
    with pytest.raises(ValueError):
        manager.start(remote.url("/x"), target_dir, "files", timeout=0)


def test_a_download_record_is_the_same_after_reopening(managers, remote, target_dir, store):
    handle = managers().start(remote.file("/keep.txt", b"k"), target_dir, "files")
    record = handle.wait(10)
    fresh = DownloadManager(DownloadRepository(store), LOCAL)
    assert fresh.get(handle.id) == record
    fresh.shutdown(timeout=1)
