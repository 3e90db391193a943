"""Who sees and cancels which download, through every download route.

A user sees and cancels their own downloads; `view-all-downloads` and
`manage-all-downloads` (the admin role's) widen that to everyone's, with the secrets in
others' URLs redacted; someone else's download id answers like an unknown one.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from ferry.kernel.statuses import FINAL_DOWNLOAD_STATUSES
from tests.api.test_import_api import prepared, state_is, upload, wait_for
from tests.conftest import log_in, make_config
from tests.support.envelope import assert_error
from tests.support.importers import build_zip
from tests.support.remote import wait_until

pytest_plugins = ("tests.support.download_fixtures",)

SECRETS = "?token=ann-token-1&X-Amz-Signature=ann-sig-2&api_key=ann-key-3&page=2"
SECRET_VALUES = ("ann-token-1", "ann-sig-2", "ann-key-3")


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path / "data", allow_download=True, allow_private_networks=True)


@pytest.fixture
def ann(make_user):
    return make_user("ann", ["user"])


@pytest.fixture
def bob(make_user):
    return make_user("bob", ["user"])


def start(client, caller, directory: str, url: str) -> str:
    response = client.get(f"/{directory}?download={quote(url, safe='')}", headers=caller.bearer)
    assert response.status_code == 200, response.text
    return response.json()["download_id"]


def listed(client, caller, path: str, key: str) -> list[dict]:
    response = client.get(path, headers=caller.bearer)
    assert response.status_code == 200, response.text
    return response.json()[key]


def every_list(client, caller, directory: str) -> dict[str, list[str]]:
    """The ids each list route shows `caller`."""
    return {
        "all active": [d["id"] for d in listed(client, caller, "/api/v1/downloads", "downloads")],
        "active here": [
            d["id"] for d in listed(client, caller, f"/{directory}?downloads=", "downloads")
        ],
        "history": [d["id"] for d in listed(client, caller, "/?download_history=", "history")],
    }


def one(client, caller, download_id: str):
    return client.get(f"/api/v1/downloads/{download_id}", headers=caller.bearer)


def finished(client, caller, download_id: str) -> dict:
    def record() -> dict:
        return one(client, caller, download_id).json()["download"]

    assert wait_until(lambda: record()["status"] in FINAL_DOWNLOAD_STATUSES, timeout=30)
    return record()


def test_a_user_sees_only_their_own_downloads_on_every_route(client, ann, bob, make_user, remote):
    ann_id = start(client, ann, "ann", remote.endless("/a.bin") + SECRETS)
    bob_id = start(client, bob, "bob", remote.endless("/b.bin"))
    reader = make_user("reader", ["user"])

    nothing = {"all active": [], "active here": [], "history": []}
    ann_sees = {**nothing, "all active": [ann_id], "active here": [ann_id]}
    assert every_list(client, ann, "ann") == ann_sees
    assert every_list(client, bob, "ann") == {**nothing, "all active": [bob_id]}
    assert every_list(client, reader, "ann") == nothing
    mine = one(client, ann, ann_id).json()["download"]
    assert mine["url"].endswith(SECRETS)  # the owner sees the URL whole
    assert (mine["owner_id"], mine["owner_username"]) == (ann.user_id, "ann")

    client.delete(f"/api/v1/downloads/{ann_id}", headers=ann.bearer)
    assert finished(client, ann, ann_id)["status"] == "cancelled"
    assert every_list(client, ann, "ann")["history"] == [ann_id]
    assert every_list(client, bob, "ann")["history"] == []
    assert every_list(client, reader, "ann")["history"] == []


def test_someone_elses_download_answers_as_unknown(client, ann, bob, remote):
    ann_id = start(client, ann, "ann", remote.endless("/a.bin") + SECRETS)

    unknown = assert_error(one(client, bob, "no-such-id"), 404)
    theirs = assert_error(one(client, bob, ann_id), 404)
    assert theirs == {**unknown, "error": unknown["error"].replace("no-such-id", ann_id)}
    assert_error(client.delete(f"/api/v1/downloads/{ann_id}", headers=bob.bearer), 404)
    assert one(client, ann, ann_id).json()["download"]["status"] not in FINAL_DOWNLOAD_STATUSES


def test_an_admin_sees_and_cancels_everyones_with_others_secrets_redacted(
    client, admin, ann, remote
):
    running = start(client, ann, "ann", remote.endless("/a.bin") + SECRETS)
    done = start(client, ann, "ann", remote.file("/done.txt", b"done") + SECRETS)
    own = start(client, admin, "mine", remote.file("/own.txt", b"own") + SECRETS)
    finished(client, ann, done)
    finished(client, admin, own)

    lists = every_list(client, admin, "ann")
    assert lists["all active"] == [running] and lists["active here"] == [running]
    assert set(lists["history"]) == {done, own}
    seen = [
        *listed(client, admin, "/api/v1/downloads", "downloads"),
        *listed(client, admin, "/ann?downloads=", "downloads"),
        *[h for h in listed(client, admin, "/?download_history=", "history") if h["id"] == done],
        one(client, admin, running).json()["download"],
    ]
    for record in seen:
        assert record["owner_id"] == ann.user_id and record["owner_username"] == "ann"
        assert not any(secret in record["url"] for secret in SECRET_VALUES), record["url"]
        assert "token=***" in record["url"] and "page=2" in record["url"]
    # The admin's own download is theirs: shown whole.
    assert one(client, admin, own).json()["download"]["url"].endswith(SECRETS)

    cancelled = client.delete(f"/api/v1/downloads/{running}", headers=admin.bearer)
    assert cancelled.status_code == 200, cancelled.text
    assert "ann-token-1" not in cancelled.json()["download"]["url"]
    assert finished(client, ann, running)["status"] == "cancelled"


def test_an_error_message_quoting_the_url_is_redacted_for_others(client, admin, ann, remote):
    url = remote.status("/gone.bin", 404) + SECRETS
    download_id = start(client, ann, "ann", url)
    record = finished(client, ann, download_id)
    assert record["error"] == "REMOTE_FILE_NOT_FOUND"
    assert "ann-token-1" in record["message"]  # the message quotes the URL
    seen = one(client, admin, download_id).json()["download"]
    assert seen["error"] == record["error"] and seen["message"]
    assert not any(secret in seen["message"] for secret in SECRET_VALUES), seen["message"]


def test_import_downloads_are_owned_by_who_ran_them(importing, tmp_path, remote):
    app, client, admin, _ = importing
    app.services.accounts.create_user(
        "ops", email=None, name="Ops", password="ops-password-1", roles=["admin"]
    )
    ops = log_in(client, "ops", "ops-password-1")
    app.services.accounts.create_user(
        "reader", email=None, name="Reader", password="reader-password-1", roles=["user"]
    )
    reader = log_in(client, "reader", "reader-password-1")
    slack_token = "xoxe-slack-secret"
    attachment = remote.file("/x.txt", b"attached") + f"?t={slack_token}"
    messages = [
        {
            "type": "message",
            "user": "U1",
            "text": "a file",
            "ts": "1500000000.000100",
            "files": [{"id": "F1", "name": "x.txt", "url_private_download": attachment}],
        }
    ]
    export = build_zip(
        tmp_path / "slack.zip",
        {
            "users.json": [{"id": "U1", "name": "dee", "profile": {"email": "dee@example.test"}}],
            "channels.json": [{"id": "C1", "name": "general", "creator": "U1", "members": ["U1"]}],
            "general/2017-07-14.json": messages,
        },
    )
    assert upload(client, ops, export, importer_key="slack").json() == {"success": True}
    prepared(client, ops)
    client.post(
        "/api/v1/startImport",
        headers=ops.headers,
        json={"input": {"users": {"all": True}, "channels": {"all": True}}},
    )
    assert wait_for(client, ops, state_is("done"))["state"] == "done"
    assert client.post("/api/v1/downloadPendingFiles", headers=ops.headers).json()["count"] == 1
    wait_for(client, ops, state_is("done"))

    [pending] = listed(client, ops, "/?download_history=", "history")
    assert (pending["kind"], pending["status"]) == ("pending-file", "completed")
    assert (pending["owner_id"], pending["owner_username"]) == (ops.user_id, "ops")
    assert slack_token in pending["url"]
    # Another admin sees it with the token masked; a plain user not at all.
    [as_admin] = listed(client, admin, "/?download_history=", "history")
    assert as_admin["id"] == pending["id"] and slack_token not in as_admin["url"]
    assert listed(client, reader, "/?download_history=", "history") == []

    public = remote.file("/export.zip", b"not really a zip")
    response = client.post(
        "/api/v1/downloadPublicImportFile",
        headers=admin.headers,
        json={"fileUrl": public, "importerKey": "csv"},
    )
    assert response.json() == {"success": True}

    def imports(caller) -> list[dict]:
        history = listed(client, caller, "/?download_history=", "history")
        return [h for h in history if h["kind"] == "import"]

    assert wait_until(lambda: imports(admin) != [], timeout=30)
    [imported] = imports(admin)
    assert (imported["owner_id"], imported["owner_username"]) == (admin.user_id, "admin")
    assert [h["id"] for h in imports(ops)] == [imported["id"]]
    assert imports(reader) == []
