"""Large files from the files page go up in chunks the server keeps, so an interrupted
upload goes on from what arrived; each chunk needs the session, the CSRF token and the
upload permission, and a wrong offset or size changes nothing."""

import os

import pytest

from tests.api.test_web_ui import csrf_of, sign_in
from tests.conftest import USER_PASSWORD


@pytest.fixture
def csrf(client):
    sign_in(client)
    return csrf_of(client.get("/ui/files/").text)


def held(client, name, folder=""):
    answer = client.get("/ui/edit/upload-held", params={"folder": folder, "name": name})
    assert answer.status_code == 200
    return answer.json()["size"]


def chunk(client, csrf, name, body, *, offset, total, folder="", overwrite=False):
    params = {"folder": folder, "name": name, "offset": offset, "total": total}
    if overwrite:
        params["overwrite"] = "on"
    headers = {} if csrf is None else {"X-CSRF-Token": csrf}
    return client.post("/ui/edit/upload-chunk", params=params, content=body, headers=headers)


def test_chunks_resume_from_what_the_server_holds_and_publish_at_the_end(client, files_dir, csrf):
    (files_dir / "in").mkdir()
    data = os.urandom(3000)
    assert held(client, "big.bin", "in") == 0
    first = chunk(client, csrf, "big.bin", data[:1000], offset=0, total=3000, folder="in")
    assert first.status_code == 200 and first.json() == {"size": 1000, "complete": False}
    # The page was reloaded: it asks what arrived and goes on from there.
    assert held(client, "big.bin", "in") == 1000
    assert not (files_dir / "in" / "big.bin").exists()
    assert "big.bin" not in client.get("/ui/files/in/").text
    second = chunk(client, csrf, "big.bin", data[1000:], offset=1000, total=3000, folder="in")
    assert second.json() == {"size": 3000, "complete": True, "path": "in/big.bin"}
    assert (files_dir / "in" / "big.bin").read_bytes() == data
    assert held(client, "big.bin", "in") == 0
    assert [p.name for p in (files_dir / "in").iterdir()] == ["big.bin"]


def test_a_chunk_at_the_wrong_offset_is_refused_with_what_the_server_holds(client, files_dir, csrf):
    chunk(client, csrf, "f.bin", b"a" * 10, offset=0, total=30)
    stale = chunk(client, csrf, "f.bin", b"b" * 10, offset=0, total=30)
    assert stale.status_code == 409 and stale.json()["size"] == 10
    assert held(client, "f.bin") == 10


def test_a_chunk_past_the_announced_size_is_refused_and_what_arrived_is_kept(
    client, files_dir, csrf
):
    chunk(client, csrf, "f.bin", b"a" * 10, offset=0, total=15)
    over = chunk(client, csrf, "f.bin", b"b" * 10, offset=10, total=15)
    assert over.status_code == 400 and 'class="error"' in over.text
    assert not (files_dir / "f.bin").exists()


def test_cancel_drops_what_arrived(client, files_dir, csrf):
    chunk(client, csrf, "f.bin", b"a" * 10, offset=0, total=30)
    params = {"folder": "", "name": "f.bin"}
    dropped = client.post("/ui/edit/upload-cancel", params=params, headers={"X-CSRF-Token": csrf})
    assert dropped.json() == {"cancelled": True}
    assert held(client, "f.bin") == 0
    assert list(files_dir.iterdir()) == []


def test_chunks_and_cancel_need_the_csrf_token(client, files_dir, csrf):
    for token in (None, "0" * 64):
        refused = chunk(client, token, "f.bin", b"x", offset=0, total=1)
        assert refused.status_code == 403 and "error-csrf" in refused.text
        headers = {} if token is None else {"X-CSRF-Token": token}
        cancel = client.post("/ui/edit/upload-cancel", params={"name": "f.bin"}, headers=headers)
        assert cancel.status_code == 403
    assert list(files_dir.iterdir()) == []


def test_an_existing_file_is_not_replaced_unless_asked(client, files_dir, csrf):
    (files_dir / "f.bin").write_bytes(b"old")
    kept = chunk(client, csrf, "f.bin", b"new", offset=0, total=3)
    assert kept.status_code == 409 and "already exists" in kept.text
    replaced = chunk(client, csrf, "f.bin", b"new", offset=0, total=3, overwrite=True)
    assert replaced.json()["complete"] is True
    assert (files_dir / "f.bin").read_bytes() == b"new"


@pytest.mark.parametrize("name", ["..", "../escape", "a/b", ".hidden", ""])
def test_hostile_names_are_refused_and_nothing_is_written(client, files_dir, csrf, name):
    refused = chunk(client, csrf, name, b"x", offset=0, total=1)
    assert 400 <= refused.status_code < 500
    assert list(files_dir.iterdir()) == []


def test_sizes_must_be_whole_numbers_within_the_upload_limit(client, files_dir, csrf):
    for total in ("-1", "abc", "1" * 30):
        assert chunk(client, csrf, "f.bin", b"", offset=0, total=total).status_code == 400
    too_big = chunk(client, csrf, "f.bin", b"", offset=0, total=10**15)
    assert too_big.status_code == 413
    assert list(files_dir.iterdir()) == []


def test_a_plain_user_may_not_upload_in_chunks(client, files_dir, make_user):
    make_user("bob", ["user"])
    sign_in(client, "bob", USER_PASSWORD)
    token = csrf_of(client.get("/ui/files/").text)
    assert chunk(client, token, "f.bin", b"x", offset=0, total=1).status_code == 403
    asked = client.get("/ui/edit/upload-held", params={"name": "f.bin"})
    assert asked.status_code == 403
    assert list(files_dir.iterdir()) == []


def test_signed_out_browsers_are_refused(client, files_dir):
    refused = chunk(client, "0" * 64, "f.bin", b"x", offset=0, total=1)
    assert refused.status_code == 401
    assert list(files_dir.iterdir()) == []


def test_a_chunk_over_the_chunk_limit_is_refused(client, files_dir, csrf, monkeypatch):
    monkeypatch.setattr("handlers.ui.resumable.CHUNK_LIMIT", 100)
    refused = chunk(client, csrf, "f.bin", b"x" * 200, offset=0, total=1000)
    assert refused.status_code == 413
    assert held(client, "f.bin") == 0
    assert not (files_dir / "f.bin").exists()
