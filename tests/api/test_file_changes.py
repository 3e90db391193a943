"""Changing the file tree: PUT uploads, folders, deletions, moves and who may do them."""

import os

import pytest

from handlers.app import create_app
from tests.conftest import ADMIN_PASSWORD, log_in, make_config
from tests.support.envelope import assert_error


@pytest.fixture
def tree(files_dir):
    (files_dir / "docs" / "old").mkdir(parents=True)
    (files_dir / "docs" / "report.txt").write_bytes(b"first")
    (files_dir / "docs" / "old" / "a.txt").write_bytes(b"a")
    return files_dir


def hidden_files(directory):
    return sorted(p.name for p in directory.rglob(".*"))


def test_put_creates_the_file_and_its_parents(client, admin, files_dir):
    response = client.put("/new/deep/data.bin", content=b"\x00\x01" * 1000, headers=admin.bearer)
    assert response.status_code == 201
    assert response.json() == {"success": True, "path": "new/deep/data.bin", "size": 2000}
    assert (files_dir / "new" / "deep" / "data.bin").read_bytes() == b"\x00\x01" * 1000
    assert hidden_files(files_dir) == []
    assert client.get("/new/deep/data.bin", headers=admin.bearer).content == b"\x00\x01" * 1000


def test_put_keeps_an_existing_file_unless_overwrite(client, admin, tree):
    response = client.put("/docs/report.txt", content=b"second", headers=admin.bearer)
    assert_error(response, 409)
    assert (tree / "docs" / "report.txt").read_bytes() == b"first"
    replaced = client.put(
        "/docs/report.txt?overwrite=true", content=b"second", headers=admin.bearer
    )
    assert replaced.status_code == 200
    assert (tree / "docs" / "report.txt").read_bytes() == b"second"
    assert hidden_files(tree) == []


def test_put_never_replaces_a_directory(client, admin, tree):
    response = client.put("/docs/old?overwrite=true", content=b"x", headers=admin.bearer)
    assert_error(response, 409)
    assert (tree / "docs" / "old" / "a.txt").read_bytes() == b"a"


def test_put_over_the_size_cap_is_413_and_leaves_nothing(tmp_path):
    app = create_app(make_config(tmp_path / "capped", max_upload_size=10))
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    files_dir = app.services.config.files_dir

    def chunks():
        yield b"x" * 8
        yield b"x" * 8

    with app.test_client() as client:
        admin = log_in(client, "admin", ADMIN_PASSWORD)
        declared = client.put("/big.bin", content=b"x" * 11, headers=admin.bearer)
        assert_error(declared, 413)
        streamed = client.put("/big.bin", content=chunks(), headers=admin.bearer)
        assert_error(streamed, 413)
        assert client.put("/ok.bin", content=b"x" * 10, headers=admin.bearer).status_code == 201
    app.services.close()
    assert not (files_dir / "big.bin").exists()
    assert (files_dir / "ok.bin").stat().st_size == 10
    assert hidden_files(files_dir) == []


def test_put_refuses_hidden_and_reserved_names(client, admin, files_dir):
    for path in ("/.env", "/docs/.hidden/x", "/file-upload/x"):
        response = client.put(path, content=b"x", headers=admin.bearer)
        assert response.status_code in (400, 404), path
    assert list(files_dir.iterdir()) == []


def test_put_on_an_api_path_is_405(client, admin):
    response = client.put("/api/v1/login", content=b"x", headers=admin.bearer)
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


def test_mkdir_by_post_and_by_mkcol(client, admin, files_dir):
    made = client.post("/a/b?mkdir=", headers=admin.bearer)
    assert made.status_code == 201 and made.json()["path"] == "a/b"
    assert (files_dir / "a" / "b").is_dir()
    again = client.request("MKCOL", "/a/b", headers=admin.bearer)
    assert_error(again, 409)
    assert client.request("MKCOL", "/c", headers=admin.bearer).status_code == 201
    assert (files_dir / "c").is_dir()


def test_post_needs_exactly_one_action(client, admin, files_dir):
    assert_error(client.post("/x", headers=admin.bearer), 400)
    assert_error(client.post("/x?mkdir=&move=y", headers=admin.bearer), 400)
    assert list(files_dir.iterdir()) == []


def test_delete_a_file_and_folders(client, admin, tree):
    assert client.delete("/docs/report.txt", headers=admin.bearer).status_code == 200
    assert not (tree / "docs" / "report.txt").exists()
    assert_error(client.delete("/docs", headers=admin.bearer), 409)
    assert (tree / "docs" / "old" / "a.txt").exists()
    assert client.delete("/docs?recursive=true", headers=admin.bearer).status_code == 200
    assert not (tree / "docs").exists()
    assert_error(client.delete("/docs", headers=admin.bearer), 404)


def test_root_is_never_deleted(client, admin, tree):
    assert client.delete("/", headers=admin.bearer).status_code == 405
    for path in ("//", "/%2F", "/docs/..", "/docs/%2e%2e"):
        response = client.delete(f"{path}?recursive=true", headers=admin.bearer)
        assert response.status_code in (400, 403, 404, 405), path
    assert (tree / "docs" / "report.txt").read_bytes() == b"first"


def test_delete_removes_a_symlink_not_its_target(client, admin, tree):
    os.symlink(tree / "docs", tree / "link")
    assert client.delete("/link?recursive=true", headers=admin.bearer).status_code == 200
    assert not os.path.lexists(tree / "link")
    assert (tree / "docs" / "report.txt").read_bytes() == b"first"


def test_delete_refuses_a_folder_a_download_writes_into(app, client, admin, tree):
    app.services.file_edits.busy_directories = lambda: ["docs/old"]
    assert_error(client.delete("/docs?recursive=true", headers=admin.bearer), 409)
    assert_error(client.delete("/docs/old?recursive=true", headers=admin.bearer), 409)
    assert_error(
        client.request("MOVE", "/docs", headers={**admin.bearer, "Destination": "/d2"}), 409
    )
    assert (tree / "docs" / "old" / "a.txt").exists()


def test_move_by_header_and_by_post(client, admin, tree):
    moved = client.request(
        "MOVE",
        "/docs/report.txt",
        headers={**admin.bearer, "Destination": "http://testserver/archive/2024/r%20one.txt"},
    )
    assert moved.status_code == 201 and moved.json()["path"] == "archive/2024/r one.txt"
    assert (tree / "archive" / "2024" / "r one.txt").read_bytes() == b"first"
    back = client.post("/archive/2024/r one.txt?move=docs/report.txt", headers=admin.bearer)
    assert back.status_code == 201
    assert (tree / "docs" / "report.txt").read_bytes() == b"first"


def test_move_keeps_an_existing_destination_unless_overwrite(client, admin, tree):
    (tree / "other.txt").write_bytes(b"other")
    headers = {**admin.bearer, "Destination": "/docs/report.txt"}
    assert_error(client.request("MOVE", "/other.txt", headers=headers), 409)
    assert (tree / "docs" / "report.txt").read_bytes() == b"first"
    replaced = client.request("MOVE", "/other.txt", headers={**headers, "Overwrite": "T"})
    assert replaced.status_code == 201
    assert (tree / "docs" / "report.txt").read_bytes() == b"other"


def test_move_refuses_into_itself_hidden_and_outside(client, admin, tree):
    for destination in ("/docs/old/inner", "/.hidden", "/../escape", "/api/x", "/docs"):
        response = client.request(
            "MOVE", "/docs", headers={**admin.bearer, "Destination": destination}
        )
        assert response.status_code in (400, 404, 409), destination
    assert (tree / "docs" / "report.txt").read_bytes() == b"first"
    assert sorted(p.name for p in tree.iterdir()) == ["docs"]


def test_hidden_part_files_cannot_be_moved_into_view(client, admin, files_dir):
    (files_dir / ".ferry-upload-abc").write_bytes(b"partial")
    response = client.post("/.ferry-upload-abc?move=visible.bin", headers=admin.bearer)
    assert_error(response, 404)
    assert not (files_dir / "visible.bin").exists()


@pytest.mark.parametrize("role", ["user", "bot"])
def test_plain_users_may_not_change_the_tree(client, make_user, tree, role):
    caller = make_user(f"{role}1", [role])
    assert_error(client.put("/x.txt", content=b"x", headers=caller.bearer), 403)
    assert_error(client.post("/x?mkdir=", headers=caller.bearer), 403)
    assert_error(client.request("MKCOL", "/x", headers=caller.bearer), 403)
    assert_error(client.delete("/docs/report.txt", headers=caller.bearer), 403)
    move = client.request("MOVE", "/docs", headers={**caller.bearer, "Destination": "/d"})
    assert_error(move, 403)
    assert sorted(p.name for p in tree.iterdir()) == ["docs"]


def test_editors_upload_move_and_delete(client, make_user, tree):
    editor = make_user("ed", ["editor"])
    assert client.put("/e.txt", content=b"e", headers=editor.bearer).status_code == 201
    move = client.request("MOVE", "/e.txt", headers={**editor.bearer, "Destination": "/f.txt"})
    assert move.status_code == 201
    assert client.delete("/f.txt", headers=editor.bearer).status_code == 200
    assert sorted(p.name for p in tree.iterdir()) == ["docs"]


def test_anonymous_callers_are_refused_before_the_body_is_read(client, files_dir):
    assert_error(client.put("/x.txt", content=b"x"), 401)
    assert_error(client.request("MKCOL", "/x"), 401)
    assert list(files_dir.iterdir()) == []


def test_put_stores_json_and_form_bodies_as_they_came(client, admin, files_dir):
    for name, body, kind in (
        ("a.json", b'{"not": "validated"', "application/json"),
        ("b.txt", b"a=1&b", "application/x-www-form-urlencoded"),
    ):
        headers = {**admin.bearer, "Content-Type": kind}
        assert client.put(f"/{name}", content=body, headers=headers).status_code == 201
        assert (files_dir / name).read_bytes() == body
