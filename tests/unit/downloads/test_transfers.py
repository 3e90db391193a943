"""Downloads the file server starts: the URL is checked once, and every redirect target
is checked as it comes."""

from __future__ import annotations

import dataclasses

import pytest

from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import DOMAIN_BLOCKED, CheckedUrl, FetchPolicy
from ferry.downloads.transfers import Transfers
from ferry.files import FileTree
from ferry.kernel.statuses import FINAL_DOWNLOAD_STATUSES
from storage.downloads import DownloadRepository
from tests.support.remote import wait_until

pytest_plugins = ("tests.support.download_fixtures",)


@dataclasses.dataclass(frozen=True)
class CountingPolicy(FetchPolicy):
    """Notes every URL checked against it."""

    checked: list[str] = dataclasses.field(default_factory=list, compare=False)

    def check_url(self, url: str) -> CheckedUrl:
        self.checked.append(url)
        return super().check_url(url)


class AnyoneMay:
    def authorize(self, user: dict, permission: str | None) -> None:
        pass


@pytest.fixture
def policy() -> CountingPolicy:
    return CountingPolicy(allow_private_networks=True, blocked_domains=("blocked.test",))


@pytest.fixture
def transfers(store, tmp_path, policy):
    manager = DownloadManager(DownloadRepository(store), policy)
    manager.startup()
    yield Transfers(manager, FileTree(tmp_path / "files"), AnyoneMay(), allowed=True)
    manager.shutdown(timeout=10)


def finished(transfers: Transfers, download_id: str) -> dict:
    assert wait_until(lambda: transfers.get(download_id)["status"] in FINAL_DOWNLOAD_STATUSES)
    return transfers.get(download_id)


@pytest.mark.parametrize("timeout", [None, 30])
def test_a_started_download_checks_its_url_once(transfers, policy, remote, timeout):
    url = remote.file("/report.pdf", b"data")
    started = transfers.start({}, "inbox", url, filename=None, timeout=timeout)
    assert finished(transfers, started["download_id"])["status"] == "completed"
    assert policy.checked == [url]


def test_each_redirect_target_is_checked_as_it_comes(transfers, policy, remote):
    final = remote.file("/final.bin", b"data")
    url = remote.redirect("/start", final)
    started = transfers.start({}, "inbox", url, filename=None, timeout=None)
    record = finished(transfers, started["download_id"])
    assert (record["status"], record["filename"]) == ("completed", "final.bin")
    assert policy.checked == [url, final]


def test_a_redirect_the_check_refuses_is_not_followed(transfers, policy, remote):
    refused = f"http://blocked.test:{remote.port}/secret"
    url = remote.redirect("/start", refused)
    started = transfers.start({}, "inbox", url, filename=None, timeout=None)
    record = finished(transfers, started["download_id"])
    assert (record["status"], record["error"]) == ("failed", DOMAIN_BLOCKED)
    assert policy.checked == [url, refused]
    assert [r.path for r in remote.requests] == ["/start"]
