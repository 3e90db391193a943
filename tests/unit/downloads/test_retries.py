"""Transient failures are tried again, with backoff, from the bytes already on disk;
permanent ones are not."""

from __future__ import annotations

import pytest

from ferry.downloads.fetch_types import TransferTuning
from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import NETWORK_ERROR, REMOTE_FILE_NOT_FOUND
from ferry.downloads.request import retry_after_seconds
from storage.downloads import DownloadRepository
from tests.support.downloads import LOCAL, listing
from tests.support.remote import pattern_bytes

pytest_plugins = ("tests.support.download_fixtures",)

SIZE = 200_000


@pytest.fixture
def make_manager(store):
    made: list[DownloadManager] = []

    def make(**tuning) -> DownloadManager:
        options = {"retry_backoff": 0.01, **tuning}
        manager = DownloadManager(
            DownloadRepository(store), LOCAL, tuning=TransferTuning(**options)
        )
        manager.startup()
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.shutdown(timeout=10)


def failing_then_serving(remote, path: str, failures: list[tuple[int, list]]) -> str:
    """Answers each of `failures` (status, headers) in turn, then the file."""
    left = list(failures)
    body = pattern_bytes(SIZE)

    def handler(h) -> None:
        if left:
            status, headers = left.pop(0)
            h.send_plain(status, b"try later", headers)
        else:
            h.send_plain(200, body)

    return remote.route(path, handler)


def asked(remote, path: str) -> list:
    return [r for r in remote.requests if r.path == path]


def test_a_server_failing_twice_then_serving_completes_on_the_third_try(
    remote, target_dir, make_manager
):
    url = failing_then_serving(remote, "/flaky.bin", [(503, []), (429, [("Retry-After", "0")])])
    record = make_manager().start(url, target_dir, "files").wait(20)
    assert (record["status"], record["attempts"]) == ("completed", 3)
    assert (target_dir / "flaky.bin").read_bytes() == pattern_bytes(SIZE)
    assert len(asked(remote, "/flaky.bin")) == 3


def test_a_missing_file_is_asked_for_once(remote, target_dir, make_manager):
    url = remote.url("/nothing-here.bin")
    record = make_manager().start(url, target_dir, "files").wait(20)
    assert (record["status"], record["error"], record["attempts"]) == (
        "failed",
        REMOTE_FILE_NOT_FOUND,
        1,
    )
    assert len(asked(remote, "/nothing-here.bin")) == 1


@pytest.mark.parametrize("status", [400, 403, 410])
def test_client_errors_other_than_408_and_429_are_not_retried(
    remote, target_dir, make_manager, status
):
    url = remote.status(f"/refused-{status}", status)
    record = make_manager().start(url, target_dir, "files").wait(20)
    assert record["status"] == "failed" and record["attempts"] == 1
    assert len(asked(remote, f"/refused-{status}")) == 1


def test_tries_end_after_the_configured_retries(remote, target_dir, make_manager):
    url = failing_then_serving(remote, "/down.bin", [(502, [])] * 10)
    record = make_manager(retries=2).start(url, target_dir, "files").wait(20)
    assert (record["status"], record["error"], record["attempts"]) == ("failed", NETWORK_ERROR, 3)
    assert len(asked(remote, "/down.bin")) == 3
    assert listing(target_dir) == []


def test_a_body_cut_short_goes_on_from_the_bytes_on_disk(remote, target_dir, make_manager):
    body = pattern_bytes(SIZE)
    url = remote.cut_once("/cut.bin", body, sent=SIZE // 2)
    record = make_manager(resume_margin=1024).start(url, target_dir, "files").wait(20)
    assert (record["status"], record["attempts"]) == ("completed", 2)
    assert (target_dir / "cut.bin").read_bytes() == body
    second = asked(remote, "/cut.bin")[1]
    assert int(second.headers["Range"].removeprefix("bytes=").split("-")[0]) > 0


def test_retry_after_is_read_as_seconds_or_a_date_and_capped():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("100000") == 300.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
