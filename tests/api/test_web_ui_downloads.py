"""The web page's downloads: start one from a folder's form, pause, resume, and see it
finish with a link to the file; a plain user does not see others' downloads."""

from __future__ import annotations

import re

import pytest

from tests.api.test_downloads_api import active, finished
from tests.api.test_web_ui import csrf_of, sign_in
from tests.conftest import USER_PASSWORD, make_config
from tests.support.remote import pattern_bytes, wait_until

pytest_plugins = ("tests.support.download_fixtures",)

SIZE = 1 << 20


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path / "data", allow_download=True, allow_private_networks=True)


def test_start_pause_resume_from_the_page(client, admin, remote, files_dir):
    (files_dir / "big").mkdir()
    url = remote.ranged("/big.bin", SIZE, pause=0.2, validators=[("ETag", '"v1"')])
    sign_in(client)
    folder = client.get("/ui/files/big/")
    assert "Download a URL into this folder" in folder.text
    started = client.post(
        "/ui/downloads/start",
        data={"csrf_token": csrf_of(folder.text), "folder": "big", "url": url, "timeout": "30"},
    )
    assert started.status_code == 200 and "big.bin" in started.text
    download_id = active(client, admin)[0]["id"]
    assert wait_until(lambda: (active(client, admin) or [{}])[0].get("current_size", 0) > 0)

    csrf = csrf_of(started.text)
    paused = client.post(f"/ui/downloads/{download_id}/pause", data={"csrf_token": csrf})
    assert paused.status_code == 200 and "Resume" in paused.text
    assert active(client, admin)[0]["status"] == "paused"

    remote.ranged("/big.bin", SIZE, validators=[("ETag", '"v1"')])
    resumed = client.post(f"/ui/downloads/{download_id}/resume", data={"csrf_token": csrf})
    assert resumed.status_code == 200
    assert finished(client, admin, download_id)["status"] == "completed"
    assert (files_dir / "big" / "big.bin").read_bytes() == pattern_bytes(SIZE)
    history = client.get("/ui/downloads?status=completed").text
    assert 'href="/ui/raw/big/big.bin"' in history


def test_a_bad_url_shows_the_envelope_code(client):
    sign_in(client)
    csrf = csrf_of(client.get("/ui/files/").text)
    refused = client.post("/ui/downloads/start", data={"csrf_token": csrf, "url": "ftp://x/y"})
    assert refused.status_code == 400 and re.search(r"<code>[A-Z_]+</code>", refused.text)


def test_plain_user_does_not_see_others_downloads(client, admin, make_user, remote):
    url = remote.ranged("/slow.bin", SIZE, pause=0.2)
    csrf = csrf_of(sign_in(client) and client.get("/ui/files/").text)
    client.post("/ui/downloads/start", data={"csrf_token": csrf, "url": url})
    assert "slow.bin" in client.get("/ui/downloads").text
    client.cookies.clear()
    make_user("bob", ["user"])
    sign_in(client, "bob", USER_PASSWORD)
    assert "slow.bin" not in client.get("/ui/downloads").text


def test_the_downloads_page_starts_a_download_into_a_named_folder(client, admin, remote, files_dir):
    (files_dir / "inbox").mkdir()
    url = remote.file("/note.txt", b"from the downloads page")
    sign_in(client)
    page = client.get("/ui/downloads")
    assert 'action="/ui/downloads/start"' in page.text and 'name="folder"' in page.text
    started = client.post(
        "/ui/downloads/start",
        data={"csrf_token": csrf_of(page.text), "folder": "inbox", "url": url},
        follow_redirects=False,
    )
    assert started.status_code == 303 and started.headers["location"] == "/ui/downloads"
    assert wait_until(lambda: (files_dir / "inbox" / "note.txt").is_file())
    assert (files_dir / "inbox" / "note.txt").read_bytes() == b"from the downloads page"
