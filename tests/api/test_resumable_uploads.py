"""Resumable uploads: PATCH appends parts, HEAD says where to go on, the last part publishes;
parts left untouched too long are swept."""

import os
import time

import pytest

from ferry.files.edits import part_name
from handlers.app import create_app
from tests.conftest import ADMIN_PASSWORD, log_in, make_config
from tests.support.envelope import assert_error

APPEND = {"X-Update-Range": "append"}


@pytest.fixture
def headers(admin):
    return {**admin.bearer, **APPEND}


def test_parts_add_up_and_the_last_publishes(client, admin, headers, files_dir):
    first = client.patch("/big/file.bin?size=10", content=b"01234", headers=headers)
    assert first.status_code == 202 and first.json()["size"] == 5
    assert not (files_dir / "big" / "file.bin").exists()
    listing = client.get("/big", headers=admin.bearer).json()
    assert listing["entries"] == []
    probe = client.head("/big/file.bin", headers=admin.bearer)
    assert probe.status_code == 404 and probe.headers["x-upload-offset"] == "5"
    last = client.patch("/big/file.bin?size=10", content=b"56789", headers=headers)
    assert last.status_code == 201 and last.json() == {
        "success": True,
        "path": "big/file.bin",
        "size": 10,
    }
    assert (files_dir / "big" / "file.bin").read_bytes() == b"0123456789"
    assert [p.name for p in (files_dir / "big").iterdir()] == ["file.bin"]
    assert "x-upload-offset" not in client.head("/big/nothing", headers=admin.bearer).headers


def test_more_than_announced_is_refused_and_the_part_kept(client, admin, headers, files_dir):
    client.patch("/f.bin?size=4", content=b"ab", headers=headers)
    assert_error(client.patch("/f.bin?size=4", content=b"cdef", headers=headers), 400)
    assert client.head("/f.bin", headers=admin.bearer).headers["x-upload-offset"] == "2"
    assert client.patch("/f.bin?size=4", content=b"cd", headers=headers).status_code == 201
    assert (files_dir / "f.bin").read_bytes() == b"abcd"


def test_append_needs_its_header_and_respects_existing_files(client, admin, headers, files_dir):
    (files_dir / "kept.txt").write_bytes(b"kept")
    response = client.patch("/x.bin?size=1", content=b"x", headers=admin.bearer)
    assert response.status_code == 400
    assert_error(client.patch("/kept.txt?size=1", content=b"x", headers=headers), 409)
    replaced = client.patch("/kept.txt?size=1&overwrite=true", content=b"x", headers=headers)
    assert replaced.status_code == 200
    assert (files_dir / "kept.txt").read_bytes() == b"x"


def test_plain_users_may_not_append(client, make_user, files_dir):
    user = make_user("u1", ["user"])
    response = client.patch("/x.bin?size=1", content=b"x", headers={**user.bearer, **APPEND})
    assert_error(response, 403)
    assert list(files_dir.iterdir()) == []


def test_the_server_sweeps_parts_left_untouched_past_their_ttl(tmp_path):
    config = make_config(tmp_path / "data", upload_part_ttl=3600)
    app = create_app(config)
    try:
        abandoned = config.files_dir / "big" / part_name("file.bin")
        abandoned.parent.mkdir(parents=True)
        abandoned.write_bytes(b"left behind")
        stamp = time.time() - 7200
        os.utime(abandoned, (stamp, stamp))
        recent = config.files_dir / part_name("other.bin")
        recent.write_bytes(b"recent")
        assert abandoned.exists()  # building the app sweeps nothing
        with app.test_client() as client:
            assert app.services.part_sweeper.wait_for_sweeps(1, 30)
            assert not abandoned.exists() and recent.exists()
            app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
            bearer = log_in(client, "admin", ADMIN_PASSWORD).bearer
            assert "x-upload-offset" not in client.head("/big/file.bin", headers=bearer).headers
    finally:
        app.services.close()
