"""Browsing the file tree: listings, streamed files, ranges, caching, and hostile paths."""

import os

import pytest

from tests.support.envelope import assert_error


@pytest.fixture
def tree(files_dir):
    (files_dir / "music" / "2024").mkdir(parents=True)
    (files_dir / "music" / "2024" / "song.txt").write_bytes(b"0123456789")
    (files_dir / "readme.md").write_text("# hi\n")
    (files_dir / ".secret").write_text("hidden")
    return files_dir


def test_root_lists_directories_first_and_hides_dotfiles(client, admin, tree):
    body = client.get("/", headers=admin.bearer).json()
    assert [(e["name"], e["type"]) for e in body["entries"]] == [
        ("music", "directory"),
        ("readme.md", "file"),
    ]
    assert body["total"] == 2 and body["path"] == ""


def test_nested_directory_listing_with_paging(client, admin, tree):
    for name in ("a", "b", "c"):
        (tree / "music" / "2024" / f"{name}.bin").write_bytes(b"x" * 3)
    body = client.get("/music/2024?offset=1&count=2", headers=admin.bearer).json()
    assert body["path"] == "music/2024"
    assert [e["name"] for e in body["entries"]] == ["b.bin", "c.bin"]
    assert (body["count"], body["total"]) == (2, 4)
    assert body["entries"][0]["size"] == 3


def test_file_streams_with_type_length_and_validators(client, admin, tree):
    response = client.get("/music/2024/song.txt", headers=admin.bearer)
    assert response.content == b"0123456789"
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["content-length"] == "10"
    assert response.headers["etag"] and response.headers["last-modified"]


def test_a_file_keeps_its_type_only_among_text_images_audio_and_video(client, admin, tree):
    names = ("notes.txt", "photo.png", "report.pdf", "data.json", "README")
    for name in names:
        (tree / name).write_bytes(b"{}")
    types = {
        name: client.get(f"/{name}", headers=admin.bearer).headers["content-type"] for name in names
    }
    assert types == {
        "notes.txt": "text/plain; charset=utf-8",
        "photo.png": "image/png",
        "report.pdf": "application/octet-stream",
        "data.json": "application/octet-stream",
        "README": "application/octet-stream",
    }
    # Sent as bytes, a JSON file is an attachment rather than a page of the API.
    answer = client.get("/data.json", headers=admin.bearer)
    assert answer.headers["content-disposition"].startswith("attachment")


def test_range_request_returns_206_with_the_slice(client, admin, tree):
    response = client.get("/music/2024/song.txt", headers={**admin.bearer, "Range": "bytes=2-5"})
    assert response.status_code == 206
    assert response.content == b"2345"
    assert response.headers["content-range"] == "bytes 2-5/10"


def test_unsatisfiable_range_is_416_envelope(client, admin, tree):
    response = client.get("/music/2024/song.txt", headers={**admin.bearer, "Range": "bytes=50-60"})
    assert_error(response, 416)
    assert response.headers["content-range"] == "bytes */10"


def test_malformed_range_is_ignored(client, admin, tree):
    response = client.get("/music/2024/song.txt", headers={**admin.bearer, "Range": "pages=1"})
    assert response.status_code == 200 and response.content == b"0123456789"


def test_conditional_requests_answer_304(client, admin, tree):
    first = client.get("/readme.md", headers=admin.bearer)
    again = client.get(
        "/readme.md", headers={**admin.bearer, "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    since = client.get(
        "/readme.md", headers={**admin.bearer, "If-Modified-Since": first.headers["last-modified"]}
    )
    assert since.status_code == 304


def test_users_role_can_browse(client, make_user, tree):
    reader = make_user("reader", ["user"])
    assert client.get("/music", headers=reader.headers).status_code == 200


def test_missing_path_is_404(client, admin, tree):
    assert_error(client.get("/music/nope", headers=admin.bearer), 404)


def test_api_paths_never_fall_into_the_file_tree(client, admin, tree):
    (tree / "api").mkdir()
    (tree / "api" / "v1").mkdir()
    assert_error(client.get("/api/v1/nothing", headers=admin.bearer), 404)
    assert_error(client.get("/api", headers=admin.bearer), 404)


HOSTILE_PATHS = [
    "/..",
    "/../..",
    "/music/../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2E%2E%2Fetc%2Fpasswd",
    "/music/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/music/..%2f..%2fetc%2fpasswd",
    "/.%2e/.%2e/etc/passwd",
    "/%2fetc%2fpasswd",
    "//etc/passwd",
    "/music%00.txt",
    "/music/%00",
    "/a%0Ab",
    "/a%0Db",
    "/a%09b",
    "/a%1Fb",
    "/a%7Fb",
    "/..%5c..%5cetc%5cpasswd",
    "/music%5C..%5C..%5Cetc",
    "/%5c%5cserver%5cshare",
    "/music/./2024/song.txt",
    "/./readme.md",
    "/%2e/readme.md",
    "/.secret",
    "/music/.hidden",
    "/escape",
    "/escape/passwd",
    "/escape-dir",
    "/escape-dir/outside.txt",
    "/music/%c0%ae%c0%ae/etc",
    "/%252e%252e/etc/passwd",
    "/" + "a" * 300,
    "/" + "a/" * 1100,
    "/%ff%fe",
    "/music/2024/song.txt/..",
    "/readme.md/",
    "/readme.md/x",
    "/api/../readme.md",
    "/API/v1/x",
    "/%u002e%u002e/etc",
]


@pytest.mark.parametrize("hostile", HOSTILE_PATHS)
def test_hostile_path_never_reads_outside_the_root(client, admin, tree, tmp_path, hostile):
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "outside.txt").write_text("SECRET-OUTSIDE")
    (outside / "passwd").write_text("SECRET-OUTSIDE")
    if not (tree / "escape").exists():
        os.symlink(outside / "passwd", tree / "escape")
        os.symlink(outside, tree / "escape-dir")
    response = client.get(hostile, headers=admin.bearer)
    assert b"SECRET-OUTSIDE" not in response.content
    assert b"hidden" not in response.content
    assert response.status_code in (200, 400, 404), response.text
    if response.status_code != 200:
        assert_error(response, response.status_code)
    else:
        assert response.headers["content-type"].startswith(("application/json", "text/"))
        if response.headers["content-type"].startswith("application/json"):
            names = {e["name"] for e in response.json()["entries"]}
            assert not names & {"escape", "escape-dir", "outside.txt", ".secret"}


def test_other_methods_api_paths_answer_405_not_404(client, admin):
    response = client.get("/api/v1/login", headers=admin.bearer)
    assert_error(response, 405)
    assert "POST" in response.headers["allow"]
