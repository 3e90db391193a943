"""Headers that keep Ferry's answers safe in a browser: served files that never run in
the API's origin, no framing, no sniffing, and nothing private left in a cache."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

import pytest

from tests.conftest import ADMIN_PASSWORD

FILE_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'"
PAGE = b"<html><script>fetch('/api/v1/users.list')</script></html>"

# Names a browser would render or run if served inline from the API's origin.
ACTIVE_FILES = [
    "page.html",
    "page.htm",
    "page.xhtml",
    "image.svg",
    "feed.xml",
    "script.js",
    "module.mjs",
    "no-extension",
]
PASSIVE_FILES = ["photo.png", "notes.txt", "table.csv", "clip.mp4"]


@pytest.fixture
def served(files_dir):
    for name in ACTIVE_FILES + PASSIVE_FILES:
        (files_dir / name).write_bytes(PAGE)
    return files_dir


def assert_sandboxed(response) -> None:
    assert response.headers["content-security-policy"] == FILE_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("name", ACTIVE_FILES)
def test_active_files_are_sandboxed_attachments(client, admin, served, name):
    response = client.get(f"/{name}", headers=admin.bearer)
    assert response.status_code == 200 and response.content == PAGE
    assert_sandboxed(response)
    assert response.headers["content-disposition"] == (
        f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"
    )


@pytest.mark.parametrize("name", PASSIVE_FILES)
def test_passive_files_stay_inline_but_sandboxed(client, admin, served, name):
    response = client.get(f"/{name}", headers=admin.bearer)
    assert response.status_code == 200
    assert_sandboxed(response)
    assert "content-disposition" not in response.headers


def test_ranges_and_validators_still_work_on_a_sandboxed_file(client, admin, served):
    ranged = client.get("/page.html", headers={**admin.bearer, "Range": "bytes=0-5"})
    assert ranged.status_code == 206 and ranged.content == PAGE[:6]
    assert_sandboxed(ranged)
    assert ranged.headers["content-disposition"].startswith("attachment;")
    again = client.get(
        "/page.html", headers={**admin.bearer, "If-None-Match": ranged.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.headers["cache-control"] == "no-store"


def test_download_on_a_file_is_a_sandboxed_attachment_even_for_a_passive_type(
    client, admin, served
):
    response = client.get("/photo.png?download=", headers=admin.bearer)
    assert response.status_code == 200 and response.content == PAGE
    assert_sandboxed(response)
    assert response.headers["content-disposition"].startswith('attachment; filename="photo.png"')


# One quoted ASCII fallback, then the exact name in RFC 8187 encoding: nothing else.
DISPOSITION = re.compile(
    r"^attachment; filename=\"([^\"\\\\]*)\"; filename\*=UTF-8''([A-Za-z0-9%!#$&+^`|~._-]*)$"
)


@pytest.mark.parametrize(
    ("name", "fallback"),
    [
        ('say "hi".html', "say _hi_.html"),
        ("résumé.svg", "r_sum_.svg"),
        ("semi;colon, comma.html", "semi;colon, comma.html"),
        ("日本.xml", "__.xml"),
        ('x.html"; filename="evil.exe', "x.html_; filename=_evil.exe"),
    ],
)
def test_file_names_are_encoded_as_rfc_6266_says(client, admin, files_dir, name, fallback):
    (files_dir / name).write_bytes(PAGE)
    response = client.get("/" + quote(name), headers=admin.bearer)
    assert response.status_code == 200, response.text
    parsed = DISPOSITION.match(response.headers["content-disposition"])
    assert parsed is not None, response.headers["content-disposition"]
    assert parsed.group(1) == fallback
    assert unquote(parsed.group(2)) == name


# --- every answer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "authenticated"),
    [
        ("GET", "/api/v1/me", True),
        ("GET", "/", True),
        ("GET", "/api/v1/users.list", True),
        ("GET", "/api/v1/downloads", True),
        ("GET", "/api/v1/me", False),  # 401
        ("GET", "/no/such/file", True),  # 404
        ("POST", "/api/v1/logout", False),  # 401
    ],
)
def test_api_answers_are_never_framed_sniffed_or_cached(client, admin, method, path, authenticated):
    headers = admin.bearer if authenticated else {}
    response = client.request(method, path, headers=headers)
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert (
        response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    )
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("password", [ADMIN_PASSWORD, "wrong-password"])
def test_login_answers_are_never_cached(client, password):
    response = client.post("/api/v1/login", json={"user": "admin", "password": password})
    assert response.status_code in (200, 401)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", ["/api/info", "/api/v1/health", "/api/v1/openapi.json"])
def test_public_documents_may_be_cached_but_not_framed(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert "cache-control" not in response.headers
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_the_swagger_ui_keeps_its_scripts_but_cannot_be_framed(client):
    response = client.get("/api/v1/ui/")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert response.headers["x-frame-options"] == "DENY"
