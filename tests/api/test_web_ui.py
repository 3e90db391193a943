"""The web page through the app: sign in, sessions, CSRF, page headers, the / redirect."""

import re

import pytest

from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def sign_in(client, username="admin", password=ADMIN_PASSWORD):
    response = client.post(
        "/ui/login", data={"username": username, "password": password}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return response


def csrf_of(page_html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', page_html).group(1)


def test_browser_opening_root_goes_to_the_page_and_api_clients_keep_json(client):
    browser = client.get("/", headers={"Accept": BROWSER_ACCEPT}, follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"] == "/ui/"
    api = client.get("/", headers={"Accept": "application/json"}, follow_redirects=False)
    assert api.status_code == 401 and api.json()["success"] is False


def test_session_cookie_is_httponly_strict_and_the_page_sends_a_strict_policy(client, files_dir):
    (files_dir / "notes.txt").write_text("hello")
    cookie = sign_in(client).headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    page = client.get("/ui/files/")
    assert page.status_code == 200 and "notes.txt" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text and "style=" not in page.text
    assert client.get("/ui/raw/notes.txt").text == "hello"


def test_wrong_password_shows_the_envelope_message_and_sets_no_cookie(client):
    response = client.post("/ui/login", data={"username": "admin", "password": "nope"})
    assert response.status_code == 401
    assert "Unauthorized" in response.text and "set-cookie" not in response.headers


def test_signed_out_page_goes_to_login(client):
    response = client.get("/ui/downloads", follow_redirects=False)
    assert response.headers["location"] == "/ui/login?next=/ui/downloads"


def test_state_change_without_the_csrf_token_is_refused(client, app):
    sign_in(client)
    refused = client.post(
        "/ui/admin/users",
        data={"username": "mallory", "email": "m@example.test", "password": "x" * 20},
    )
    assert refused.status_code == 403 and "error-csrf" in refused.text
    assert app.services.accounts.users.by_username("mallory") is None
    token = csrf_of(client.get("/ui/admin").text)
    created = client.post(
        "/ui/admin/users",
        data={
            "csrf_token": token,
            "username": "carol",
            "email": "carol@example.test",
            "password": "a-long-unusual-passphrase-42",
            "role": "user",
        },
    )
    assert created.status_code == 200 and "carol" in created.text


def test_cookie_does_not_authenticate_the_json_api(client):
    sign_in(client)
    assert client.get("/api/v1/me").status_code == 401
    assert client.post("/api/v1/logout").status_code == 401


def test_sign_out_revokes_the_token(client, app):
    sign_in(client)
    token = client.cookies.get("ferry_session")
    csrf = csrf_of(client.get("/ui/files/").text)
    client.post("/ui/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert app.services.accounts.user_for_token(token) is None


@pytest.mark.parametrize("page", ["/ui/admin", "/ui/imports"])
def test_plain_user_sees_no_admin(client, make_user, page):
    make_user("bob", ["user"])
    sign_in(client, "bob", USER_PASSWORD)
    files = client.get("/ui/files/")
    assert "/ui/admin" not in files.text and "/ui/imports" not in files.text
    denied = client.get(page)
    assert denied.status_code == 403 and "error-unauthorized" in denied.text


def test_a_served_folder_named_ui_stays_reachable_through_the_file_api(client, admin, files_dir):
    (files_dir / "ui").mkdir()
    (files_dir / "ui" / "plan.txt").write_text("kept")
    assert client.get("/ui/plan.txt", headers=admin.bearer).text == "kept"
    # Without credentials the path is the web page's, which has no such page.
    assert client.get("/ui/plan.txt", follow_redirects=False).status_code == 404
