"""Whole folders and files at once: ?zip= streams, ?q= searches, ?hash= digests."""

import hashlib
import io
import zipfile

import pytest

from ferry.files import reading
from tests.support.envelope import assert_error


@pytest.fixture
def tree(files_dir):
    (files_dir / "photos" / "2024" / "Summer").mkdir(parents=True)
    (files_dir / "photos" / "2024" / "Summer" / "Beach.JPG").write_bytes(b"j" * 1000)
    (files_dir / "photos" / "notes.txt").write_bytes(b"notes")
    (files_dir / "photos" / ".ferry-upload-abc").write_bytes(b"partial")
    (files_dir / "photos" / ".secret").write_bytes(b"hidden")
    (files_dir / "photos" / "link").symlink_to(files_dir / "photos" / "notes.txt")
    return files_dir


def test_zip_holds_the_visible_files_only(client, admin, tree):
    response = client.get("/photos?zip=", headers=admin.bearer)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert "photos.zip" in response.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    files = {info.filename for info in archive.infolist() if not info.is_dir()}
    assert files == {"2024/Summer/Beach.JPG", "notes.txt"}
    assert archive.read("2024/Summer/Beach.JPG") == b"j" * 1000


def test_zip_of_a_file_is_a_400(client, admin, tree):
    assert_error(client.get("/photos/notes.txt?zip=", headers=admin.bearer), 400)


def test_search_is_case_insensitive_and_recursive(client, admin, tree):
    body = client.get("/?q=summer", headers=admin.bearer).json()
    assert [entry["name"] for entry in body["entries"]] == ["photos/2024/Summer"]
    assert body["truncated"] is False
    body = client.get("/photos?q=.JPG", headers=admin.bearer).json()
    assert [(e["name"], e["size"]) for e in body["entries"]] == [("2024/Summer/Beach.JPG", 1000)]
    hidden = client.get("/?q=ferry-upload", headers=admin.bearer).json()
    assert hidden["entries"] == []


def test_search_pages_through_its_matches(client, admin, tree):
    for index in range(5):
        (tree / f"match-{index}").write_bytes(b"")

    def page(offset):
        query = f"/?q=MATCH&count=2&offset={offset}"
        body = client.get(query, headers=admin.bearer).json()
        names = [entry["name"] for entry in body["entries"]]
        return names, body["offset"], body["more"], body["truncated"]

    assert page(0) == (["match-0", "match-1"], 0, True, False)
    assert page(2) == (["match-2", "match-3"], 2, True, False)
    assert page(4) == (["match-4"], 4, False, False)
    assert page(5) == ([], 5, False, False)


def test_search_says_when_it_stopped_at_its_bound(client, admin, tree, monkeypatch):
    monkeypatch.setattr(reading, "SEARCH_MAX_VISITED", 3)
    body = client.get("/photos?q=e", headers=admin.bearer).json()
    assert body["truncated"] is True and body["more"] is False
    assert_error(client.get("/photos?q=e&count=0", headers=admin.bearer), 400)
    assert_error(client.get("/photos?q=e&offset=-1", headers=admin.bearer), 400)


def test_hash_is_the_sha256_and_follows_changes(client, admin, tree):
    body = client.get("/photos/notes.txt?hash=", headers=admin.bearer).json()
    assert body["sha256"] == hashlib.sha256(b"notes").hexdigest() and body["size"] == 5
    (tree / "photos" / "notes.txt").write_bytes(b"changed notes")
    again = client.get("/photos/notes.txt?hash=", headers=admin.bearer).json()
    assert again["sha256"] == hashlib.sha256(b"changed notes").hexdigest()
    assert_error(client.get("/photos?hash=", headers=admin.bearer), 400)
    assert_error(client.get("/photos/.secret?hash=", headers=admin.bearer), 404)
