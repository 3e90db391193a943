"""Downloads the file server starts: the URL is checked once, and every redirect target
is checked as it comes; each user sees and cancels their own, the all-downloads
permissions widen that, and others' URLs are shown without their secrets."""

from __future__ import annotations

import dataclasses

import pytest

from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import DOMAIN_BLOCKED, CheckedUrl, FetchPolicy
from ferry.downloads.transfers import MANAGE_ALL_DOWNLOADS, VIEW_ALL_DOWNLOADS, Transfers
from ferry.files import FileTree
from ferry.kernel.errors import PERMISSION_DENIED, Forbidden, NotFound
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


class Grants:
    """Accounts' permission check over permissions given per user id; everyone may
    start downloads."""

    def __init__(self, **by_user: set[str]):
        self.by_user = by_user

    def permissions_of(self, user: dict) -> frozenset[str]:
        return frozenset({"download-files", *self.by_user.get(user["_id"], ())})

    def authorize(self, user: dict, permission: str | None) -> None:
        if permission is not None and permission not in self.permissions_of(user):
            raise Forbidden(PERMISSION_DENIED)


ANN = {"_id": "ann-id", "username": "ann"}
BOB = {"_id": "bob-id", "username": "bob"}
AUDITOR = {"_id": "auditor-id", "username": "auditor"}
OPERATOR = {"_id": "operator-id", "username": "operator"}
GRANTS = Grants(
    **{
        AUDITOR["_id"]: {VIEW_ALL_DOWNLOADS},
        OPERATOR["_id"]: {VIEW_ALL_DOWNLOADS, MANAGE_ALL_DOWNLOADS},
    }
)


@pytest.fixture
def policy() -> CountingPolicy:
    return CountingPolicy(allow_private_networks=True, blocked_domains=("blocked.test",))


@pytest.fixture
def repository(store) -> DownloadRepository:
    return DownloadRepository(store)


@pytest.fixture
def transfers(repository, tmp_path, policy):
    manager = DownloadManager(repository, policy)
    manager.startup()
    yield Transfers(manager, FileTree(tmp_path / "files"), GRANTS, allowed=True)
    manager.shutdown(timeout=10)


def finished(transfers: Transfers, download_id: str, user: dict = ANN) -> dict:
    def done() -> bool:
        return transfers.get(user, download_id)["status"] in FINAL_DOWNLOAD_STATUSES

    assert wait_until(done)
    return transfers.get(user, download_id)


@pytest.mark.parametrize("timeout", [None, 30])
def test_a_started_download_checks_its_url_once(transfers, policy, remote, timeout):
    url = remote.file("/report.pdf", b"data")
    started = transfers.start(ANN, "inbox", url, filename=None, timeout=timeout)
    assert finished(transfers, started["download_id"])["status"] == "completed"
    assert policy.checked == [url]


def test_each_redirect_target_is_checked_as_it_comes(transfers, policy, remote):
    final = remote.file("/final.bin", b"data")
    url = remote.redirect("/start", final)
    started = transfers.start(ANN, "inbox", url, filename=None, timeout=None)
    record = finished(transfers, started["download_id"])
    assert (record["status"], record["filename"]) == ("completed", "final.bin")
    assert policy.checked == [url, final]


def test_a_redirect_the_check_refuses_is_not_followed(transfers, policy, remote):
    refused = f"http://blocked.test:{remote.port}/secret"
    url = remote.redirect("/start", refused)
    started = transfers.start(ANN, "inbox", url, filename=None, timeout=None)
    record = finished(transfers, started["download_id"])
    assert (record["status"], record["error"]) == ("failed", DOMAIN_BLOCKED)
    assert policy.checked == [url, refused]
    assert [r.path for r in remote.requests] == ["/start"]


# --- who sees and cancels which ---------------------------------------------------------

SECRETS = "?token=ann-secret&X-Amz-Signature=sig-value&page=2"


def start(transfers: Transfers, user: dict, url: str, directory: str = "inbox") -> str:
    return transfers.start(user, directory, url, filename=None, timeout=None)["download_id"]


def ids(records: list[dict]) -> list[str]:
    return [record["id"] for record in records]


def test_each_user_sees_and_cancels_only_their_own_downloads(transfers, remote):
    ann_id = start(transfers, ANN, remote.endless("/a.bin") + SECRETS, "ann")
    bob_id = start(transfers, BOB, remote.endless("/b.bin"), "bob")

    assert ids(transfers.active(ANN)) == [ann_id] and ids(transfers.active(BOB)) == [bob_id]
    assert transfers.active(BOB, "ann") == [] and ids(transfers.active(ANN, "ann")) == [ann_id]
    mine = transfers.get(ANN, ann_id)
    assert mine["url"].endswith(SECRETS)  # its owner sees the URL whole
    assert (mine["owner_id"], mine["owner_username"]) == ("ann-id", "ann")
    with pytest.raises(NotFound):
        transfers.get(BOB, ann_id)
    with pytest.raises(NotFound):
        transfers.cancel(BOB, ann_id)
    assert transfers.get(ANN, ann_id)["status"] not in FINAL_DOWNLOAD_STATUSES

    transfers.cancel(ANN, ann_id)
    assert finished(transfers, ann_id)["status"] == "cancelled"
    assert ids(transfers.history(ANN)) == [ann_id] and transfers.history(BOB) == []


def test_view_all_shows_everyones_downloads_with_their_secrets_redacted(transfers, remote):
    ann_id = start(transfers, ANN, remote.file("/a.txt", b"a") + SECRETS)
    finished(transfers, ann_id)
    [seen] = transfers.history(AUDITOR)
    assert seen == transfers.get(AUDITOR, ann_id)
    assert seen["id"] == ann_id and seen["owner_id"] == "ann-id"
    assert "ann-secret" not in seen["url"] and "sig-value" not in seen["url"]
    assert "token=***" in seen["url"] and "page=2" in seen["url"]
    assert transfers.get(ANN, ann_id)["url"].endswith(SECRETS)


def test_cancelling_someone_elses_download_needs_manage_all(transfers, remote):
    ann_id = start(transfers, ANN, remote.endless("/a.bin") + SECRETS)
    with pytest.raises(Forbidden):
        transfers.cancel(AUDITOR, ann_id)  # may see it, so no pretending it is unknown
    assert transfers.get(ANN, ann_id)["status"] not in FINAL_DOWNLOAD_STATUSES

    cancelled = transfers.cancel(OPERATOR, ann_id)
    assert "ann-secret" not in cancelled["url"]
    assert finished(transfers, ann_id)["status"] == "cancelled"


def test_a_record_from_before_owners_is_seen_only_with_view_all(transfers, repository):
    repository.save(
        {
            "id": "old-1",
            "kind": "file",
            "filename": "old.bin",
            "file_path": "old/old.bin",
            "directory": "old",
            "url": "https://old.example.test/old.bin?token=legacy-secret",
            "status": "completed",
            "start_time": 1,
            "end_time": 2,
            "total_bytes": 1,
            "error": None,
            "message": "Download completed",
        }
    )
    assert transfers.history(ANN) == []
    with pytest.raises(NotFound):
        transfers.get(ANN, "old-1")
    [seen] = transfers.history(AUDITOR)
    assert (seen["id"], seen["owner_id"], seen["owner_username"]) == ("old-1", None, None)
    assert "legacy-secret" not in seen["url"]
