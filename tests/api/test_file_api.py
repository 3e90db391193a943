"""The JSON-only face: /api/v1/files, /api/v1/files/content, /api/v1/downloads/history."""

from __future__ import annotations

import pytest

from handlers.app import create_app
from tests.api.test_downloads_api import finished, start
from tests.conftest import ADMIN_PASSWORD, log_in, make_config
from tests.support.envelope import assert_error

pytest_plugins = ("tests.support.download_fixtures",)


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path / "data", allow_download=True, allow_private_networks=True)


@pytest.fixture
def tree(files_dir):
    (files_dir / "Downloads" / "2024").mkdir(parents=True)
    (files_dir / "Downloads" / "2024" / "data.csv").write_bytes(b"id,name\n1,Ada\n2,Alan\n")
    (files_dir / "Downloads" / "notes.txt").write_text("notes")
    return files_dir


def test_lists_a_nested_directory_named_in_the_query(client, admin, tree):
    answer = client.get("/api/v1/files", params={"path": "Downloads"}, headers=admin.bearer)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["path"], body["total"]) == ("Downloads", 2)
    assert [(e["name"], e["type"]) for e in body["entries"]] == [
        ("2024", "directory"),
        ("notes.txt", "file"),
    ]
    nested = client.get("/api/v1/files?path=Downloads/2024", headers=admin.bearer).json()
    assert [e["name"] for e in nested["entries"]] == ["data.csv"]


def test_listing_without_a_path_is_the_root_and_pages(client, admin, tree):
    (tree / "b").mkdir()
    answer = client.get("/api/v1/files?offset=1&count=1", headers=admin.bearer).json()
    assert (answer["path"], answer["count"], answer["offset"], answer["total"]) == ("", 1, 1, 2)
    assert [e["name"] for e in answer["entries"]] == ["b"]


def test_listing_a_file_or_a_missing_path_is_refused(client, admin, tree):
    as_file = client.get("/api/v1/files?path=Downloads/notes.txt", headers=admin.bearer)
    assert_error(as_file, 400)
    assert_error(client.get("/api/v1/files?path=nowhere", headers=admin.bearer), 404)


def test_content_is_octet_stream_bytes_as_an_attachment(client, admin, tree):
    answer = client.get("/api/v1/files/content?path=Downloads/2024/data.csv", headers=admin.bearer)
    assert answer.status_code == 200
    assert answer.content == b"id,name\n1,Ada\n2,Alan\n"
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].startswith("attachment")
    assert answer.headers["etag"]


def test_content_honours_range_and_refuses_one_outside_the_file(client, admin, tree):
    url = "/api/v1/files/content?path=Downloads/notes.txt"
    part = client.get(url, headers={**admin.bearer, "Range": "bytes=1-3"})
    assert (part.status_code, part.content) == (206, b"ote")
    assert part.headers["content-range"] == "bytes 1-3/5"
    outside = client.get(url, headers={**admin.bearer, "Range": "bytes=50-60"})
    assert outside.status_code == 416


def test_content_answers_304_for_the_current_etag(client, admin, tree):
    url = "/api/v1/files/content?path=Downloads/notes.txt"
    etag = client.get(url, headers=admin.bearer).headers["etag"]
    assert client.get(url, headers={**admin.bearer, "If-None-Match": etag}).status_code == 304


def test_content_of_a_directory_or_a_missing_file_is_refused(client, admin, tree):
    assert_error(client.get("/api/v1/files/content?path=Downloads", headers=admin.bearer), 400)
    missing = client.get("/api/v1/files/content?path=Downloads/none.csv", headers=admin.bearer)
    assert_error(missing, 404)


def test_the_clean_face_needs_a_login(client, tree):
    for url in ("/api/v1/files", "/api/v1/files/content?path=x", "/api/v1/downloads/history"):
        assert client.get(url).status_code == 401


def test_history_pages_newest_first_and_filters_by_status(client, admin, remote):
    good = [
        start(client, admin, "h", remote.file(f"/f{n}.txt", b"x"))["download_id"] for n in (1, 2)
    ]
    bad = start(client, admin, "h", remote.status("/gone.zip", 404))["download_id"]
    for download_id in (*good, bad):
        finished(client, admin, download_id)

    whole = client.get("/api/v1/downloads/history", headers=admin.bearer).json()
    assert whole["total"] == 3 and whole["success"] is True
    page = client.get("/api/v1/downloads/history?offset=1&count=1", headers=admin.bearer).json()
    assert (page["count"], page["offset"], page["total"]) == (1, 1, 3)
    assert page["history"] == whole["history"][1:2]

    failed = client.get("/api/v1/downloads/history?status=failed", headers=admin.bearer).json()
    assert [h["id"] for h in failed["history"]] == [bad] and failed["total"] == 1
    done = client.get("/api/v1/downloads/history?status=completed", headers=admin.bearer).json()
    assert sorted(h["id"] for h in done["history"]) == sorted(good)


def test_history_shows_only_the_callers_own_downloads(tmp_path, remote):
    app = create_app(make_config(tmp_path / "d", allow_download=True, allow_private_networks=True))
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    try:
        with app.test_client() as client:
            admin = log_in(client, "admin", ADMIN_PASSWORD)
            mine = start(client, admin, "h", remote.file("/a.txt", b"a"))["download_id"]
            finished(client, admin, mine)
            created = client.post(
                "/api/v1/users.create",
                json={"username": "reader", "email": "reader@example.test",
                      "password": "correct horse battery staple", "name": "Reader"},
                headers=admin.bearer,
            )  # fmt: skip
            assert created.status_code == 200, created.text
            reader = log_in(client, "reader", "correct horse battery staple")
            theirs = client.get("/api/v1/downloads/history", headers=reader.bearer).json()
            assert (theirs["history"], theirs["total"]) == ([], 0)
    finally:
        app.services.close()


def test_an_unknown_history_status_is_refused(client, admin):
    assert_error(client.get("/api/v1/downloads/history?status=lost", headers=admin.bearer), 400)
