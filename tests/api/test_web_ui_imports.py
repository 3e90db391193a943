"""The import wizard on the web page, through the app: choose an importer, upload or give
a URL, wait for the preparation, pick users and channels across pages, import, cancel,
read the summary. Admins only, every form with the session's CSRF token."""

import re
import time
from pathlib import Path

import pytest

from handlers.app import create_app
from tests.api.test_import_api import csv_export
from tests.api.test_web_ui import csrf_of, sign_in
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, log_in, make_config
from tests.support.importers import build_zip
from tests.support.remote import RemoteServer


@pytest.fixture
def wizard(tmp_path):
    """An app whose fetches may reach 127.0.0.1, a browser client signed in as the admin,
    and its CSRF token."""
    app = create_app(make_config(tmp_path / "data", allow_private_networks=True))
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    with app.test_client() as client:
        sign_in(client)
        yield app, client, csrf_of(client.get("/ui/imports").text)
    app.services.close()


WIZARD_FORMS = (
    "/ui/imports/url",
    "/ui/imports/pick",
    "/ui/imports/cancel",
    "/ui/imports/pending/files",
    "/ui/imports/pending/avatars",
)


def upload(client, csrf, path: Path, importer="csv", *, with_csrf=True):
    fields = {"importerKey": importer}
    if with_csrf:
        fields = {"csrf_token": csrf, **fields}
    return client.post(
        "/ui/imports/upload",
        data=fields,
        files={"file": (path.name, path.read_bytes(), "application/zip")},
        follow_redirects=False,
    )


def wait_for_page(client, *words, url="/ui/imports/current", timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = client.get(url)
        assert page.status_code < 500
        if all(word in page.text for word in words):
            return page.text
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {words}; last page:\n{page.text}")


def many_users_export(tmp_path: Path, count: int) -> Path:
    users = "".join(f"user{n:03d}, user{n:03d}@example.test, User {n}\n" for n in range(count))
    return build_zip(
        tmp_path / "many.zip",
        {
            "users.csv": users,
            "channels.csv": '"general","user000","public",""\n"ops","user000","private",""\n',
            "general/messages.csv": 'user001,1600000000000,"hello"\n',
        },
    )


def pick(client, csrf, action, *, kind="users", page=1, shown=(), ticked=(), q=""):
    data = {"csrf_token": csrf, "kind": kind, "page": str(page), "q": q, "action": action}
    body = list(data.items()) + [("shown", s) for s in shown] + [("pick", t) for t in ticked]
    return client.post(
        "/ui/imports/pick",
        content="&".join(f"{k}={v}" for k, v in body),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )


def shown_ids(page_html: str) -> list[str]:
    return re.findall(r'name="shown" value="([^"]+)"', page_html)


def test_importers_are_listed_with_a_note_and_each_has_its_new_import_page(wizard):
    _, client, _ = wizard
    page = client.get("/ui/imports").text
    assert "/ui/imports/new/csv" in page and "users.csv" in page
    assert "/ui/imports/new/slack" in page and "Slack workspace export" in page
    new = client.get("/ui/imports/new/slack").text
    assert 'action="/ui/imports/upload"' in new and 'value="slack"' in new
    assert 'action="/ui/imports/url"' in new
    unknown = client.get("/ui/imports/new/nope")
    assert unknown.status_code == 404 and "There is no importer" in unknown.text


def test_csv_upload_prepares_then_picks_across_pages_then_imports(wizard, tmp_path):
    app, client, csrf = wizard
    uploaded = upload(client, csrf, many_users_export(tmp_path, 120))
    assert uploaded.status_code == 303 and uploaded.headers["location"] == "/ui/imports/current"
    first = wait_for_page(client, "Choose what to import")
    assert "120 of 120 users" in first and "Page 1 of 3" in first
    assert len(shown_ids(first)) == 50  # never the whole list at once
    # Untick two users on page 1 and go to page 2: the choice is kept on the server.
    page_one = shown_ids(first)
    kept = [user for user in page_one if user not in ("user000", "user001")]
    moved = pick(client, csrf, "page-2", shown=page_one, ticked=kept)
    assert moved.status_code == 303 and "page=2" in moved.headers["location"]
    second = client.get(moved.headers["location"]).text
    assert "Page 2 of 3" in second and "118 of 120 users" in second
    assert shown_ids(second)[0] == "user050"
    back = client.get("/ui/imports/current?kind=users&page=1").text
    assert 'value="user000" id="pick-1">' in back  # unticked, still
    # A search narrows the list; "select none" applies to what it found only.
    found = pick(
        client, csrf, "search", shown=shown_ids(second), ticked=shown_ids(second), q="user11"
    )
    searched = client.get(found.headers["location"]).text
    assert shown_ids(searched) == [f"user11{n}" for n in range(10)]
    pick(client, csrf, "none", shown=shown_ids(searched), ticked=shown_ids(searched), q="user11")
    assert "108 of 120 users" in client.get("/ui/imports/current").text
    # Channels: keep only "general".
    channels = client.get("/ui/imports/current?kind=channels").text
    assert shown_ids(channels) == ["general", "ops"]
    started = pick(
        client, csrf, "start", kind="channels", shown=["general", "ops"], ticked=["general"]
    )
    assert started.status_code == 303
    summary = wait_for_page(client, "Summary", "Users created")
    assert re.search(r"<dt>Users created</dt><dd>108</dd>", summary)
    users = app.services.accounts.users
    assert users.by_username("user000") is None and users.by_username("user002") is not None
    assert users.by_username("user110") is None
    api = log_in(client, "admin", ADMIN_PASSWORD)
    channels = client.get("/api/v1/channels.list", headers=api.headers).json()["channels"]
    groups = client.get("/api/v1/groups.listAll", headers=api.headers).json()["groups"]
    assert "general" in {room["name"] for room in channels}
    assert "ops" not in {room["name"] for room in groups}


def test_selection_survives_searching_and_select_all_brings_everything_back(wizard, tmp_path):
    _, client, csrf = wizard
    upload(client, csrf, many_users_export(tmp_path, 60))
    first = wait_for_page(client, "Choose what to import")
    pick(client, csrf, "none", shown=shown_ids(first))
    assert "0 of 60 users" in client.get("/ui/imports/current").text
    pick(client, csrf, "all")
    assert "60 of 60 users" in client.get("/ui/imports/current").text


def test_starting_with_nothing_chosen_is_refused_and_changes_nothing(wizard, tmp_path):
    app, client, csrf = wizard
    upload(client, csrf, many_users_export(tmp_path, 3))
    wait_for_page(client, "Choose what to import")
    pick(client, csrf, "none")
    pick(client, csrf, "none", kind="channels")
    refused = pick(client, csrf, "start")
    assert refused.status_code == 400 and "Choose at least one user or channel" in refused.text
    assert app.services.imports.current_operation()["status"] == "importer_user_selection"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kind", "rooms", "Choose users or channels."),
        ("page", "two", "The page must be a whole number."),
        ("action", "explode", "Unknown action"),
        ("q", "x" * 201, "Search for at most 200"),
    ],
)
def test_bad_picker_input_shows_the_code_and_message(wizard, tmp_path, field, value, message):
    _, client, csrf = wizard
    upload(client, csrf, many_users_export(tmp_path, 3))
    wait_for_page(client, "Choose what to import")
    data = {"csrf_token": csrf, "kind": "users", "page": "1", "action": "save", field: value}
    refused = client.post("/ui/imports/pick", data=data)
    assert refused.status_code == 400 and "<code>error-invalid-params</code>" in refused.text
    assert message in refused.text


def test_upload_and_every_wizard_form_need_the_csrf_token(wizard, tmp_path):
    app, client, csrf = wizard
    refused = upload(client, csrf, csv_export(tmp_path), with_csrf=False)
    assert refused.status_code == 403 and "error-csrf" in refused.text
    assert app.services.imports.current_operation() is None
    for action in WIZARD_FORMS:
        response = client.post(action, data={"fileUrl": "http://127.0.0.1/x.zip"})
        assert response.status_code == 403 and "error-csrf" in response.text, action
    assert app.services.imports.current_operation() is None


def test_an_unknown_importer_or_a_missing_file_shows_the_envelope_error(wizard, tmp_path):
    app, client, csrf = wizard
    unknown = upload(client, csrf, csv_export(tmp_path), importer="nope")
    assert unknown.status_code == 400 and "error-importer-not-defined" in unknown.text
    empty = client.post(
        "/ui/imports/upload",
        data={"csrf_token": csrf, "importerKey": "csv"},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert empty.status_code == 400 and "Choose the export file" in empty.text
    not_multipart = client.post(
        "/ui/imports/upload", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert not_multipart.status_code == 400 and "multipart/form-data" in not_multipart.text


def test_an_upload_over_the_size_limit_is_refused_like_the_api(tmp_path):
    app = create_app(make_config(tmp_path / "data", max_upload_size=1000))
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    with app.test_client() as client:
        sign_in(client)
        csrf = csrf_of(client.get("/ui/imports").text)
        big = tmp_path / "big.zip"
        big.write_bytes(b"\x00" * 5000)
        refused = upload(client, csrf, big)
        assert refused.status_code == 400
        assert "<code>error-file-too-large</code>" in refused.text
        assert app.services.imports.current_operation()["status"] == "importer_import_failed"
        assert not any(p.is_file() for p in (tmp_path / "data").rglob("big.zip"))
    app.services.close()


def test_a_url_is_fetched_through_the_downloader_and_prepared(wizard, tmp_path):
    _, client, csrf = wizard
    with RemoteServer() as remote:
        url = remote.file("/export.zip", csv_export(tmp_path).read_bytes())
        started = client.post(
            "/ui/imports/url",
            data={"csrf_token": csrf, "importerKey": "csv", "fileUrl": url},
            follow_redirects=False,
        )
        assert started.status_code == 303
        page = wait_for_page(client, "Choose what to import")
    assert "billy.bob" in page


def test_a_refused_url_shows_the_downloaders_code_and_message(tmp_path):
    app = create_app(make_config(tmp_path / "data"))  # private addresses not allowed
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    with app.test_client() as client:
        sign_in(client)
        csrf = csrf_of(client.get("/ui/imports").text)
        refused = client.post(
            "/ui/imports/url",
            data={"csrf_token": csrf, "importerKey": "csv", "fileUrl": "http://127.0.0.1:9/x.zip"},
        )
        assert refused.status_code == 400 and 'class="error"' in refused.text
        assert "<code>" in refused.text
        empty = client.post(
            "/ui/imports/url", data={"csrf_token": csrf, "importerKey": "csv", "fileUrl": " "}
        )
        assert empty.status_code == 400 and "Give the URL" in empty.text
    app.services.close()


def test_cancel_stops_the_operation_and_the_summary_says_so(wizard, tmp_path):
    app, client, csrf = wizard
    upload(client, csrf, many_users_export(tmp_path, 3))
    wait_for_page(client, "Choose what to import")
    cancelled = client.post("/ui/imports/cancel", data={"csrf_token": csrf}, follow_redirects=False)
    assert cancelled.status_code == 303
    page = client.get("/ui/imports/current").text
    assert "Summary" in page and "cancelled or replaced" in page
    assert "Start a new import" in page


def test_summary_offers_pending_files_and_avatars_when_there_are_some(wizard, tmp_path):
    app, client, csrf = wizard
    remote = "http://127.0.0.1:9"
    message = {"type": "message", "user": "U1", "text": "hi", "ts": "1704067200.000100"}
    shared = {
        "type": "message",
        "user": "U1",
        "text": "",
        "ts": "1704067300.000100",
        "files": [{"id": "F1", "name": "a.txt", "url_private_download": f"{remote}/a.txt"}],
    }
    export = build_zip(
        tmp_path / "pending.zip",
        {
            "users.json": [
                {
                    "id": "U1",
                    "name": "ann",
                    "profile": {"email": "ann@example.test", "image_original": f"{remote}/a.png"},
                }
            ],
            "channels.json": [{"id": "C1", "name": "general", "members": ["U1"]}],
            "general/2024-01-01.json": [message, shared],
        },
    )
    upload(client, csrf, export, importer="slack")
    assert "ann" in wait_for_page(client, "Choose what to import")
    pick(client, csrf, "start")
    summary = wait_for_page(client, "Summary")
    assert app.services.imports.pending.waiting() == {"files": 1, "avatars": 1}
    assert "Fetch 1 pending file(s)" in summary and "Fetch 1 pending avatar(s)" in summary
    fetched = client.post(
        "/ui/imports/pending/avatars", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert fetched.status_code == 303
    assert app.services.imports.current_operation()["importerKey"] == "pending-avatars"


def test_summary_offers_no_fetch_when_nothing_is_pending(wizard, tmp_path):
    _, client, csrf = wizard
    upload(client, csrf, many_users_export(tmp_path, 2))
    wait_for_page(client, "Choose what to import")
    pick(client, csrf, "start")
    summary = wait_for_page(client, "Summary", "Users created")
    assert "pending file" not in summary and "pending avatar" not in summary


def test_the_panel_fragment_shows_the_step_for_the_live_page(wizard, tmp_path):
    _, client, csrf = wizard
    assert 'data-phase="none"' in client.get("/ui/imports/current/panel").text
    assert client.get("/ui/imports/current", follow_redirects=False).status_code == 303
    upload(client, csrf, many_users_export(tmp_path, 3))
    wait_for_page(client, 'data-phase="picking"', url="/ui/imports/current/panel")
    page = client.get("/ui/imports/current").text
    assert 'data-import-live="/ui/imports/current/panel"' in page


def test_a_plain_user_sees_no_import_link_and_is_refused_everywhere(client, make_user, tmp_path):
    make_user("bob", ["user"])
    sign_in(client, "bob", USER_PASSWORD)
    files = client.get("/ui/files/")
    assert "/ui/imports" not in files.text
    csrf = csrf_of(files.text)
    for page in (
        "/ui/imports",
        "/ui/imports/new/csv",
        "/ui/imports/current",
        "/ui/imports/current/panel",
    ):
        denied = client.get(page)
        assert denied.status_code == 403 and "error-unauthorized" in denied.text, page
    for action in WIZARD_FORMS:
        denied = client.post(
            action,
            data={"csrf_token": csrf, "importerKey": "csv", "fileUrl": "http://127.0.0.1/x.zip"},
        )
        assert denied.status_code == 403 and "error-unauthorized" in denied.text, action
    denied = upload(client, csrf, csv_export(tmp_path))
    assert denied.status_code == 403 and "error-unauthorized" in denied.text


def test_form_posts_over_100_kb_are_refused_with_the_error_page(wizard):
    app, client, csrf = wizard
    refused = client.post(
        "/ui/admin/users",
        data={"csrf_token": csrf, "username": "big", "name": "x" * 200_000},
    )
    assert refused.status_code == 413 and "error-payload-too-large" in refused.text
    assert "<h1>Something went wrong</h1>" in refused.text
    assert app.services.accounts.users.by_username("big") is None
    login = client.post("/ui/login", data={"username": "admin", "password": "p" * 150_000})
    assert login.status_code == 413
    # A form under the cap still works.
    ok = client.post("/ui/imports/cancel", data={"csrf_token": csrf}, follow_redirects=False)
    assert ok.status_code == 303
