"""Changing the file tree from the web page: new folder, upload, rename/move, delete with
a confirmation, each only with its permission and the session's CSRF token."""

import pytest

from handlers.app import create_app
from tests.api.test_web_ui import csrf_of, sign_in
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, make_config


@pytest.fixture
def signed_in_admin(client):
    sign_in(client)
    return csrf_of(client.get("/ui/files/").text)


def upload(client, files, *, csrf, folder="", overwrite=False):
    data = {"csrf_token": csrf, "folder": folder}
    if overwrite:
        data["overwrite"] = "on"
    parts = [("files", (name, body, "application/octet-stream")) for name, body in files]
    return client.post("/ui/edit/upload", data=data, files=parts, follow_redirects=False)


def test_admin_sees_every_file_action(client, files_dir, signed_in_admin):
    (files_dir / "a.txt").write_text("x")
    page = client.get("/ui/files/").text
    for control in (
        'action="/ui/edit/upload"',
        'action="/ui/edit/mkdir"',
        "/ui/edit/delete?path=a.txt",
        "/ui/edit/move?path=a.txt",
    ):
        assert control in page


def test_new_folder_is_created_in_the_current_folder(client, files_dir, signed_in_admin):
    (files_dir / "docs").mkdir()
    made = client.post(
        "/ui/edit/mkdir",
        data={"csrf_token": signed_in_admin, "folder": "docs", "name": "2026 plans"},
        follow_redirects=False,
    )
    assert made.status_code == 303 and made.headers["location"] == "/ui/files/docs/2026%20plans/"
    assert (files_dir / "docs" / "2026 plans").is_dir()
    again = client.post(
        "/ui/edit/mkdir",
        data={"csrf_token": signed_in_admin, "folder": "docs", "name": "2026 plans"},
    )
    assert again.status_code == 409 and "already exists" in again.text


@pytest.mark.parametrize("name", ["..", "../escape", "a/b", ".hidden", "back\\slash", ""])
def test_hostile_folder_names_are_refused_without_a_server_error(
    client, files_dir, signed_in_admin, name
):
    refused = client.post("/ui/edit/mkdir", data={"csrf_token": signed_in_admin, "name": name})
    assert 400 <= refused.status_code < 500 and 'class="error"' in refused.text
    assert list(files_dir.iterdir()) == []


def test_upload_streams_several_files_and_never_overwrites_unless_asked(
    client, files_dir, signed_in_admin
):
    (files_dir / "in").mkdir()
    done = upload(
        client,
        [("one.txt", b"first"), ("two.bin", b"\x00" * 70000)],
        csrf=signed_in_admin,
        folder="in",
    )
    assert done.status_code == 303 and done.headers["location"] == "/ui/files/in/"
    assert (files_dir / "in" / "one.txt").read_bytes() == b"first"
    assert (files_dir / "in" / "two.bin").stat().st_size == 70000
    listing = client.get("/ui/files/in/").text
    assert "one.txt" in listing and "two.bin" in listing
    kept = upload(client, [("one.txt", b"second")], csrf=signed_in_admin, folder="in")
    assert kept.status_code == 409 and "already exists" in kept.text
    assert (files_dir / "in" / "one.txt").read_bytes() == b"first"
    replaced = upload(
        client, [("one.txt", b"second")], csrf=signed_in_admin, folder="in", overwrite=True
    )
    assert replaced.status_code == 303 and (files_dir / "in" / "one.txt").read_bytes() == b"second"
    assert sorted(p.name for p in (files_dir / "in").iterdir()) == ["one.txt", "two.bin"]


@pytest.mark.parametrize("name", ["../up.txt", "..", ".env", "a/b.txt"])
def test_hostile_upload_names_are_refused_and_nothing_is_written(
    client, files_dir, signed_in_admin, name
):
    refused = upload(client, [(name, b"x")], csrf=signed_in_admin)
    assert 400 <= refused.status_code < 500
    assert list(files_dir.iterdir()) == [] and not (files_dir.parent / "up.txt").exists()


def test_upload_over_the_size_limit_is_refused_and_leaves_no_part_file(tmp_path):
    app = create_app(make_config(tmp_path / "data", max_upload_size=1000))
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    try:
        with app.test_client() as client:
            sign_in(client)
            csrf = csrf_of(client.get("/ui/files/").text)
            refused = upload(client, [("big.bin", b"x" * 5000)], csrf=csrf)
            assert refused.status_code == 413 and "error-payload-too-large" in refused.text
            assert list(app.services.config.files_dir.iterdir()) == []
    finally:
        app.services.close()


def test_upload_needs_the_csrf_token(client, files_dir, signed_in_admin):
    for token in (None, "0" * 64):
        data = {} if token is None else {"csrf_token": token}
        refused = client.post(
            "/ui/edit/upload", data=data, files=[("files", ("a.txt", b"x", "text/plain"))]
        )
        assert refused.status_code == 403 and "error-csrf" in refused.text
    assert list(files_dir.iterdir()) == []


def test_delete_asks_first_and_folders_go_recursively_only_when_ticked(
    client, files_dir, signed_in_admin
):
    (files_dir / "old" / "inner").mkdir(parents=True)
    (files_dir / "old" / "inner" / "f.txt").write_text("x")
    confirm = client.get("/ui/edit/delete?path=old")
    assert confirm.status_code == 200 and 'name="recursive"' in confirm.text
    assert (files_dir / "old").is_dir()
    kept = client.post("/ui/edit/delete", data={"csrf_token": signed_in_admin, "path": "old"})
    assert kept.status_code == 409 and "not empty" in kept.text and (files_dir / "old").is_dir()
    gone = client.post(
        "/ui/edit/delete",
        data={"csrf_token": signed_in_admin, "path": "old", "recursive": "on"},
        follow_redirects=False,
    )
    assert gone.status_code == 303 and gone.headers["location"] == "/ui/files/"
    assert not (files_dir / "old").exists()


def test_the_root_cannot_be_deleted(client, files_dir, signed_in_admin):
    (files_dir / "keep.txt").write_text("x")
    for path in ("", "/", "."):
        refused = client.post(
            "/ui/edit/delete", data={"csrf_token": signed_in_admin, "path": path, "recursive": "on"}
        )
        assert 400 <= refused.status_code < 500
    assert (files_dir / "keep.txt").exists()


def test_rename_and_move(client, files_dir, signed_in_admin):
    (files_dir / "a.txt").write_text("hello")
    form = client.get("/ui/edit/move?path=a.txt")
    assert form.status_code == 200 and 'name="destination"' in form.text
    moved = client.post(
        "/ui/edit/move",
        data={"csrf_token": signed_in_admin, "path": "a.txt", "destination": "archive/b.txt"},
        follow_redirects=False,
    )
    assert moved.status_code == 303 and moved.headers["location"] == "/ui/files/archive/"
    assert (files_dir / "archive" / "b.txt").read_text() == "hello" and not (
        files_dir / "a.txt"
    ).exists()
    escape = client.post(
        "/ui/edit/move",
        data={"csrf_token": signed_in_admin, "path": "archive/b.txt", "destination": "../b.txt"},
    )
    assert 400 <= escape.status_code < 500 and (files_dir / "archive" / "b.txt").exists()


def test_actions_need_the_csrf_token(client, files_dir, signed_in_admin):
    (files_dir / "a.txt").write_text("x")
    for url, data in (
        ("/ui/edit/mkdir", {"name": "new"}),
        ("/ui/edit/delete", {"path": "a.txt"}),
        ("/ui/edit/move", {"path": "a.txt", "destination": "b.txt"}),
    ):
        refused = client.post(url, data=data)
        assert refused.status_code == 403 and "error-csrf" in refused.text
    assert sorted(p.name for p in files_dir.iterdir()) == ["a.txt"]


def test_plain_user_sees_no_controls_and_is_refused(client, files_dir, make_user):
    (files_dir / "a.txt").write_text("x")
    make_user("bob", ["user"])
    sign_in(client, "bob", USER_PASSWORD)
    page = client.get("/ui/files/").text
    csrf = csrf_of(page)
    assert "/ui/edit/" not in page and 'type="file"' not in page
    for url, data in (
        ("/ui/edit/mkdir", {"name": "new"}),
        ("/ui/edit/delete", {"path": "a.txt"}),
        ("/ui/edit/move", {"path": "a.txt", "destination": "b.txt"}),
    ):
        refused = client.post(url, data={"csrf_token": csrf, **data})
        assert refused.status_code == 403 and "error-unauthorized" in refused.text
    assert client.get("/ui/edit/delete?path=a.txt").status_code == 403
    assert upload(client, [("b.txt", b"x")], csrf=csrf).status_code == 403
    assert sorted(p.name for p in files_dir.iterdir()) == ["a.txt"]


def test_download_form_passes_the_checksum(tmp_path):
    app = create_app(make_config(tmp_path / "data", allow_download=True))
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    try:
        with app.test_client() as client:
            sign_in(client)
            page = client.get("/ui/files/").text
            assert 'name="checksum"' in page
            refused = client.post(
                "/ui/downloads/start",
                data={
                    "csrf_token": csrf_of(page),
                    "url": "http://127.0.0.1:9/file.bin",
                    "checksum": "sha256:not-hex",
                },
            )
            assert refused.status_code == 400 and "INVALID_CHECKSUM" in refused.text
            assert (
                app.services.transfers.active(app.services.accounts.users.by_username("admin"))
                == []
            )
    finally:
        app.services.close()


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nnot a header line at all"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: " + b"a" * 20000),
        ("multipart/form-data", b"no boundary"),
        ("application/x-www-form-urlencoded", b"csrf_token=x"),
    ],
)
def test_malformed_upload_bodies_are_refused_without_a_server_error(
    client, files_dir, signed_in_admin, content_type, body
):
    refused = client.post("/ui/edit/upload", content=body, headers={"Content-Type": content_type})
    assert 400 <= refused.status_code < 500
    assert list(files_dir.iterdir()) == []


def test_a_file_name_too_long_for_the_disk_is_refused(client, files_dir, signed_in_admin):
    refused = upload(client, [("n" * 300 + ".txt", b"x")], csrf=signed_in_admin)
    assert 400 <= refused.status_code < 500
    assert list(files_dir.iterdir()) == []
