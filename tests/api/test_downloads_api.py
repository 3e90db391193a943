"""The Downloading Files API end to end: start, watch, browse, cancel, refuse.

Every remote is `RemoteServer` on 127.0.0.1, so the app runs with
`allow_private_networks` unless a test is about refusing exactly that.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from urllib.parse import quote

import pytest

from handlers.app import create_app
from tests.conftest import ADMIN_PASSWORD, log_in, make_config
from tests.support.envelope import assert_error
from tests.support.remote import pattern_bytes, wait_until

pytest_plugins = ("tests.support.download_fixtures",)

# The fields the Downloading Files page documents: shared, then per list.
COMMON_FIELDS = {"id", "filename", "file_path", "directory", "url", "status", "start_time"}
HISTORY_FIELDS = COMMON_FIELDS | {"total_bytes", "end_time", "error"}
# Ferry's active entries add live `speed` and `eta`.
ACTIVE_FIELDS = COMMON_FIELDS | {
    "current_size",
    "expected_size",
    "progress_percentage",
    "speed",
    "eta",
}


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path / "data", allow_download=True, allow_private_networks=True)


@contextlib.contextmanager
def other_server(tmp_path: Path, **overrides):
    """A second app over its own data dir, for settings the default one does not have."""
    app = create_app(make_config(tmp_path / "other", **overrides))
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    try:
        with app.test_client() as client:
            yield client, log_in(client, "admin", ADMIN_PASSWORD)
    finally:
        app.services.close()


def start(client, caller, directory: str, url: str, **params) -> dict:
    query = f"download={quote(url, safe='')}"
    for key, value in params.items():
        query += f"&{key}={quote(str(value), safe='')}"
    response = client.get(f"/{directory}?{query}", headers=caller.bearer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["error"] is None
    assert body["message"] == "Download started"
    return body


def history(client, caller) -> list[dict]:
    response = client.get("/?download_history=", headers=caller.bearer)
    assert response.status_code == 200, response.text
    return response.json()["history"]


def finished(client, caller, download_id: str) -> dict:
    """The history entry of `download_id`, once there is one."""

    def entry() -> dict | None:
        return next((h for h in history(client, caller) if h["id"] == download_id), None)

    assert wait_until(lambda: entry() is not None, timeout=30), f"{download_id} never finished"
    return entry()


def active(client, caller, directory: str | None = None) -> list[dict]:
    path = "/api/v1/downloads" if directory is None else f"/{directory}?downloads="
    response = client.get(path, headers=caller.bearer)
    assert response.status_code == 200, response.text
    return response.json()["downloads"]


def every_file(root: Path) -> set[Path]:
    return {Path(d, name) for d, _, names in os.walk(root) for name in names}


# A partial file's name: `.<name>.<hex tag>.part` (ferry.downloads.names.part_name).
PART_FILE = re.compile(r"\..*\.[0-9a-f]+\.part")


def leftovers(root: Path) -> list[Path]:
    return [p for p in every_file(root) if PART_FILE.fullmatch(p.name)]


# --- a download's life ------------------------------------------------------------------


def test_download_into_new_nested_directories_completes_and_browses(
    client, admin, remote, files_dir
):
    url = remote.generated("/pub/data.bin", 300_000)
    started = start(client, admin, "inbox/2024/june", url)
    assert started["filename"] == "data.bin"
    assert started["path"] == "inbox/2024/june/data.bin"

    entry = finished(client, admin, started["download_id"])
    assert set(entry) >= HISTORY_FIELDS
    assert {k: entry[k] for k in HISTORY_FIELDS - {"start_time", "end_time"}} == {
        "id": started["download_id"],
        "filename": "data.bin",
        "file_path": "inbox/2024/june/data.bin",
        "directory": "inbox/2024/june",
        "url": url,
        "status": "completed",
        "total_bytes": 300_000,
        "error": None,
    }
    assert isinstance(entry["start_time"], int) and entry["end_time"] >= entry["start_time"]

    one = client.get(f"/api/v1/downloads/{started['download_id']}", headers=admin.bearer)
    assert one.status_code == 200
    assert one.json() == {"download": entry, "success": True}

    listing = client.get("/inbox/2024/june", headers=admin.bearer).json()
    assert [(e["name"], e["size"]) for e in listing["entries"]] == [("data.bin", 300_000)]
    body = client.get("/inbox/2024/june/data.bin", headers=admin.bearer)
    assert body.status_code == 200 and body.content == pattern_bytes(300_000)
    assert active(client, admin) == []
    assert leftovers(files_dir) == []


def test_history_is_newest_first(client, admin, remote):
    ids = []
    for name in ("first", "second", "third"):
        url = remote.file(f"/{name}.txt", name.encode())
        ids.append(start(client, admin, "h", url)["download_id"])
        finished(client, admin, ids[-1])
    assert [h["id"] for h in history(client, admin)] == ids[::-1]
    assert [h["filename"] for h in history(client, admin)] == [
        "third.txt",
        "second.txt",
        "first.txt",
    ]


def test_active_lists_show_a_slow_download_with_speed_and_eta(client, admin, remote):
    url = remote.trickle("/slow.bin", pieces=200, piece=b"s" * 4096, pause=0.05)
    started = start(client, admin, "slow/dir", url)
    download_id = started["download_id"]

    def moving() -> bool:
        entries = active(client, admin, "slow/dir")
        return bool(entries) and entries[0]["speed"] > 0 and entries[0]["eta"] is not None

    assert wait_until(moving, timeout=20)
    [entry] = active(client, admin, "slow/dir")
    assert set(entry) >= ACTIVE_FIELDS
    assert entry["id"] == download_id and entry["status"] == "downloading"
    assert entry["expected_size"] == 200 * 4096
    assert 0 < entry["current_size"] < entry["expected_size"]
    assert 0 < entry["progress_percentage"] < 100
    assert entry["file_path"] == "slow/dir/slow.bin"

    assert [e["id"] for e in active(client, admin)] == [download_id]
    assert active(client, admin, "slow") == []
    assert active(client, admin, "elsewhere") == []
    one = client.get(f"/api/v1/downloads/{download_id}", headers=admin.bearer).json()
    assert one["download"]["status"] == "downloading" and "speed" in one["download"]

    client.delete(f"/api/v1/downloads/{download_id}", headers=admin.bearer)


def test_filename_parameter_names_the_file(client, admin, remote, files_dir):
    remote.file("/x", b"renamed")
    started = start(client, admin, "named", remote.url("/x?a=1"), filename="report 2024.csv")
    assert started["filename"] == "report 2024.csv"
    assert started["path"] == "named/report 2024.csv"
    assert finished(client, admin, started["download_id"])["status"] == "completed"
    assert (files_dir / "named" / "report 2024.csv").read_bytes() == b"renamed"


def test_timeout_parameter_fails_the_download_with_download_timeout(
    client, admin, remote, files_dir
):
    url = remote.stall("/stuck.bin")
    started = start(client, admin, "t", url, timeout=1)
    entry = finished(client, admin, started["download_id"])
    assert entry["status"] == "failed"
    assert entry["error"] == "DOWNLOAD_TIMEOUT"
    assert entry["total_bytes"] is None
    assert os.listdir(files_dir / "t") == []


def test_a_taken_name_gets_a_number(client, admin, remote, files_dir):
    (files_dir / "c").mkdir()
    (files_dir / "c" / "notes.txt").write_text("mine")
    url = remote.file("/notes.txt", b"theirs")
    first = start(client, admin, "c", url)
    second = start(client, admin, "c", url)
    names = {finished(client, admin, d["download_id"])["filename"] for d in (first, second)}
    assert names == {"notes (1).txt", "notes (2).txt"}
    assert (files_dir / "c" / "notes.txt").read_text() == "mine"
    assert (files_dir / "c" / "notes (1).txt").read_bytes() == b"theirs"
    entry = next(h for h in history(client, admin) if h["filename"] == "notes (1).txt")
    assert entry["file_path"] == "c/notes (1).txt"


@pytest.mark.parametrize("status", [404, 410])
def test_missing_remote_file_is_remote_file_not_found(client, admin, remote, files_dir, status):
    url = remote.status("/gone.zip", status)
    started = start(client, admin, "m", url)
    entry = finished(client, admin, started["download_id"])
    assert (entry["status"], entry["error"], entry["total_bytes"]) == (
        "failed",
        "REMOTE_FILE_NOT_FOUND",
        None,
    )
    assert os.listdir(files_dir / "m") == []


def test_cancel_stops_the_download_and_removes_the_partial_file(client, admin, remote, files_dir):
    url = remote.trickle("/big.iso", pieces=1000, piece=b"i" * 4096, pause=0.05)
    download_id = start(client, admin, "iso", url)["download_id"]
    assert wait_until(lambda: leftovers(files_dir / "iso") != [], timeout=20)

    cancelled = client.delete(f"/api/v1/downloads/{download_id}", headers=admin.bearer)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["success"] is True
    entry = finished(client, admin, download_id)
    assert (entry["status"], entry["error"]) == ("cancelled", "DOWNLOAD_CANCELLED")
    assert os.listdir(files_dir / "iso") == []
    assert active(client, admin) == []

    again = client.delete(f"/api/v1/downloads/{download_id}", headers=admin.bearer)
    assert_error(again, 409)
    assert_error(client.delete("/api/v1/downloads/no-such-id", headers=admin.bearer), 404)
    assert_error(client.get("/api/v1/downloads/no-such-id", headers=admin.bearer), 404)


# --- refusals ---------------------------------------------------------------------------


def test_server_without_allow_download_answers_download_forbidden(tmp_path, remote):
    url = remote.file("/a.txt", b"a")
    with other_server(tmp_path) as (client, admin):
        response = client.get(f"/dl?download={quote(url, safe='')}", headers=admin.bearer)
        body = assert_error(response, 403, error="DOWNLOAD_FORBIDDEN")
        assert body["success"] is False
        assert "download_id" not in body
        assert history(client, admin) == []
        assert not (tmp_path / "other" / "files" / "dl").exists()
    assert remote.untouched


@pytest.mark.parametrize(
    "url", ["ftp://example.com/data.csv", "not a url", "http:///data.csv", "file:///etc/passwd"]
)
def test_invalid_url_keeps_the_documented_body(client, admin, remote, files_dir, url):
    response = client.get(f"/Downloads?download={quote(url, safe='')}", headers=admin.bearer)
    body = assert_error(response, 400, error="INVALID_URL")
    assert set(body) == {"download_id", "filename", "path", "success", "message", "error"}
    assert body["download_id"] is None
    assert body["path"] == f"Downloads/{body['filename']}"
    assert body["message"]
    assert history(client, admin) == []
    assert not (files_dir / "Downloads").exists()


def test_blocked_domain_is_refused_before_any_request(tmp_path, remote):
    url = remote.url("/data.csv", host="localhost")
    with other_server(
        tmp_path,
        allow_download=True,
        allow_private_networks=True,
        download_blocked_domains=("localhost",),
    ) as (client, admin):
        response = client.get(f"/d?download={quote(url, safe='')}", headers=admin.bearer)
        body = assert_error(response, 403, error="DOMAIN_BLOCKED")
        assert (body["download_id"], body["filename"], body["path"]) == (
            None,
            "data.csv",
            "d/data.csv",
        )
        assert history(client, admin) == []
    assert remote.untouched


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "[::1]", "2130706433", "localhost", "LocalHost.", "api.localhost"]
)
def test_loopback_is_refused_without_allow_private_networks(tmp_path, remote, host):
    url = f"http://{host}:{remote.port}/secret.txt"
    with other_server(tmp_path, allow_download=True) as (client, admin):
        response = client.get(f"/d?download={quote(url, safe='')}", headers=admin.bearer)
        body = assert_error(response, 403, error="DOMAIN_BLOCKED")
        assert body["path"] == "d/secret.txt"
        assert history(client, admin) == []
    assert remote.untouched


def test_a_name_that_resolves_to_loopback_fails_in_history(tmp_path, remote):
    # Names are checked on what they resolve to, in the connection layer.
    resolver = {"resolver": lambda host, port: ["127.0.0.1"]}
    url = f"http://files.example.test:{remote.port}/secret.txt"
    with other_server(tmp_path, allow_download=True, fetch_policy_overrides=resolver) as (
        client,
        admin,
    ):
        download_id = start(client, admin, "d", url)["download_id"]
        entry = finished(client, admin, download_id)
        assert (entry["status"], entry["error"]) == ("failed", "DOMAIN_BLOCKED")
        assert os.listdir(tmp_path / "other" / "files" / "d") == []
    assert remote.untouched


def test_a_role_without_download_files_may_not_download_or_cancel(
    client, admin, make_user, remote, files_dir
):
    url = remote.file("/u.txt", b"u")
    bot = make_user("scripted", ["bot"])
    response = client.get(f"/mine?download={quote(url, safe='')}", headers=bot.bearer)
    assert_error(response, 403)
    assert not (files_dir / "mine").exists()
    assert remote.untouched

    download_id = start(client, admin, "", url)["download_id"]
    finished(client, admin, download_id)
    assert_error(client.delete(f"/api/v1/downloads/{download_id}", headers=bot.bearer), 403)


def test_a_plain_user_downloads_into_the_shared_tree_but_cannot_touch_others(
    client, admin, make_user, remote, files_dir
):
    reader = make_user("reader", ["user"])
    own = start(client, reader, "mine", remote.file("/mine.txt", b"m"))["download_id"]
    finished(client, reader, own)
    assert (files_dir / "mine" / "mine.txt").read_bytes() == b"m"

    others = start(client, admin, "", remote.file("/a.txt", b"a"))["download_id"]
    finished(client, admin, others)
    assert_error(client.delete(f"/api/v1/downloads/{others}", headers=reader.bearer), 404)


def test_download_on_an_existing_file_returns_it_as_an_attachment(client, admin, files_dir, remote):
    (files_dir / "docs").mkdir()
    (files_dir / "docs" / "report.pdf").write_bytes(b"%PDF-1.4 tiny")
    for query in ("download", "download=", "download=1", "download=true"):
        response = client.get(f"/docs/report.pdf?{query}", headers=admin.bearer)
        assert response.status_code == 200, (query, response.text)
        assert response.content == b"%PDF-1.4 tiny"
        assert response.headers["content-disposition"].startswith("attachment")
        assert "report.pdf" in response.headers["content-disposition"]
    assert remote.untouched
    assert history(client, admin) == []


def test_empty_download_on_a_directory_is_invalid_url(client, admin):
    response = client.get("/docs?download=", headers=admin.bearer)
    assert_error(response, 400, error="INVALID_URL")


# --- hostile names ----------------------------------------------------------------------

HOSTILE_DIRECTORIES = [
    "%2e%2e",
    "%2e%2e/%2e%2e/escape",
    "a/%2e%2e/%2e%2e/escape",
    "..%2fescape",
    "%2e%2e%5cescape",
    "a%5c..%5c..%5cescape",
    "%00nul",
    "bad%0aline",
    "tab%09dir",
    "%7f",
    "api/v1/escape",
    "api",
    "API/escape",
    ".hidden",
    "a/.hidden/b",
    "%2fetc",
    "//etc",
]


@pytest.mark.parametrize("directory", HOSTILE_DIRECTORIES)
def test_hostile_directories_never_write_outside_the_root(
    client, admin, remote, tmp_path, config, directory
):
    url = remote.file("/payload.txt", b"payload")
    before = every_file(tmp_path)
    response = client.get(f"/{directory}?download={quote(url, safe='')}", headers=admin.bearer)
    assert response.status_code in (200, 400, 403, 404, 405), response.text
    if response.status_code == 200:
        finished(client, admin, response.json()["download_id"])
    files_root = config.files_dir.resolve()
    for path in every_file(tmp_path) - before:
        if path.resolve().is_relative_to(config.state_dir.resolve()):
            continue
        assert path.resolve().is_relative_to(files_root), path
        # Whatever got written is browsable, so not in an API or hidden folder.
        relative = path.resolve().relative_to(files_root).parts
        assert relative[0] != "api" and not any(p.startswith(".") for p in relative), path
    assert not (tmp_path / "escape").exists() and not (tmp_path / "data" / "escape").exists()


HOSTILE_FILENAMES = [
    "../../../escape.txt",
    "..",
    ".",
    "/etc/passwd",
    "/",
    "a/../../escape.txt",
    "..\\..\\escape.txt",
    "C:\\Windows\\escape.txt",
    "nul\x00byte.txt",
    "line\nbreak.txt",
    "\r\nSet-Cookie: x=1",
    "%2e%2e%2fescape.txt",
    "....//....//escape.txt",
    "x" * 1000,
    "é" * 300,
    "\u202etxt.exe",
    "~/.ssh/authorized_keys",
    "dir/",
    "   ",
    ".part",
]


def test_hostile_filenames_stay_in_the_directory(client, admin, remote, tmp_path, config):
    assert len(HOSTILE_FILENAMES) == 20
    url = remote.file("/payload.txt", b"payload")
    target = config.files_dir / "fuzz"
    before = every_file(tmp_path)
    started = []
    for name in HOSTILE_FILENAMES:
        query = f"download={quote(url, safe='')}&filename={quote(name, safe='')}"
        response = client.get(f"/fuzz?{query}", headers=admin.bearer)
        assert response.status_code in (200, 400), (name, response.text)
        if response.status_code == 200:
            body = response.json()
            assert "/" not in body["filename"] and "\\" not in body["filename"]
            assert body["path"] == f"fuzz/{body['filename']}"
            started.append(body["download_id"])
    for download_id in started:
        assert finished(client, admin, download_id)["status"] == "completed"
    new_files = every_file(tmp_path) - before
    outside = [
        p
        for p in new_files
        if not p.resolve().is_relative_to(config.state_dir.resolve())
        and p.resolve().parent != target.resolve()
    ]
    assert outside == []
    written = [p for p in new_files if p.parent == target]
    assert len(written) == len(started)
    for path in written:
        assert path.read_bytes() == b"payload"
        assert len(path.name.encode()) <= 255
        assert not any(ord(ch) < 32 for ch in path.name)
    assert leftovers(tmp_path) == []


# --- disk limits ---------------------------------------------------------------------


def test_the_default_size_cap_refuses_a_file_over_10_gib(client, admin, remote, files_dir):
    # The remote announces 11 GiB and sends 1 KiB: refused on its headers, nothing kept.
    url = remote.stall("/huge.iso", length=11 * 1024**3)
    download_id = start(client, admin, "isos", url)["download_id"]
    entry = finished(client, admin, download_id)
    assert (entry["status"], entry["error"]) == ("failed", "FILE_TOO_LARGE")
    assert "11811160064" in entry["message"]
    assert every_file(files_dir) == set()


def test_a_full_download_queue_refuses_the_start_and_records_nothing(tmp_path, remote):
    with other_server(
        tmp_path,
        allow_download=True,
        allow_private_networks=True,
        max_concurrent_downloads=1,
        max_queued_downloads=1,
    ) as (client, admin):
        running = start(client, admin, "q", remote.stall("/running.bin"))["download_id"]
        waiting = start(client, admin, "q", remote.stall("/waiting.bin"))["download_id"]
        url = quote(remote.url("/refused.bin"), safe="")
        refused = client.get(f"/q?download={url}", headers=admin.bearer)
        body = assert_error(refused, 503, error="DOWNLOAD_QUEUE_FULL")
        assert body["download_id"] is None and body["path"] == "q/refused.bin"
        assert int(refused.headers["retry-after"]) >= 1
        assert {d["id"] for d in active(client, admin)} == {running, waiting}
        assert history(client, admin) == []
        assert not any("refused" in r.path for r in remote.requests)

        # A place freed is a place taken again.
        client.delete(f"/api/v1/downloads/{waiting}", headers=admin.bearer)
        again = start(client, admin, "q", remote.stall("/again.bin"))["download_id"]
        for download_id in (running, again):
            client.delete(f"/api/v1/downloads/{download_id}", headers=admin.bearer)
