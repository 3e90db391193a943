"""Hostile request bodies through the app: each gets a clear 4xx in the envelope, costs
no more than its route's limit, and leaves no secret, flood or forged line in the log.

Paired with tests/live/test_hostile_http.py (the HTTP server's own limits)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import tracemalloc

import pytest

from ferry.kernel.logs import LINE_LIMIT, JsonFormatter, TextFormatter
from handlers.app import create_app
from handlers.validation import MAX_JSON_DEPTH
from tests.conftest import ADMIN_PASSWORD, log_in, make_config
from tests.support.envelope import assert_error
from tests.support.importers import build_zip

JSON_LIMIT = 4096
UPLOAD_LIMIT = 64 * 1024
SECRET = "Zq7-do-not-log-me"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def limited(tmp_path):
    """An app with small body limits, its client and an admin."""
    config = make_config(tmp_path / "data", max_json_body=JSON_LIMIT, max_upload_size=UPLOAD_LIMIT)
    app = create_app(config)
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    with app.test_client() as client:
        yield app, client, log_in(client, "admin", ADMIN_PASSWORD)
    app.services.close()


@pytest.fixture
def server_log():
    """What `ferry serve` would log at its level, in both formats."""
    streams = {"text": io.StringIO(), "json": io.StringIO()}
    handlers = []
    for name, formatter in (("text", TextFormatter()), ("json", JsonFormatter())):
        handler = logging.StreamHandler(streams[name])
        handler.setFormatter(formatter)
        handlers.append(handler)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    for handler in handlers:
        root.addHandler(handler)
    yield streams
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(level)


def call_raw(client, app, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]):
    """POST through the bare ASGI app; returns (status, body, body messages read)."""
    read = []
    sent: list[dict] = []

    async def receive():
        if len(read) < len(chunks):
            read.append(chunks[len(read)])
            return {"type": "http.request", "body": read[-1], "more_body": len(read) < len(chunks)}
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    client.portal.call(app, scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), len(read)


# --- body limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "declared"),
    [
        ("/api/v1/login", JSON_LIMIT + 1),
        ("/api/v1/login", 200 * 1024**2),
        ("/api/v1/users.create", 10**12),
        ("/api/v1/startImport", JSON_LIMIT * 2),
        ("/api/v1/uploadImportFile", 4 * UPLOAD_LIMIT),
    ],
)
def test_a_declared_body_over_the_limit_is_refused_unread(limited, path, declared):
    app, client, _ = limited
    headers = [(b"content-type", b"application/json"), (b"content-length", str(declared).encode())]
    status, body, read = call_raw(client, app, path, headers, [b"{" * 1024] * 8)
    assert status == 413 and read == 0
    assert body["success"] is False and body["errorType"] == "error-payload-too-large"


def test_a_chunked_body_is_refused_once_it_passes_the_limit(limited):
    app, client, _ = limited
    headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    chunks = [b" " * 1024] * 100
    status, body, read = call_raw(client, app, "/api/v1/login", headers, chunks)
    assert status == 413 and body["errorType"] == "error-payload-too-large"
    assert read <= JSON_LIMIT // 1024 + 1


def test_chunked_bodies_under_the_limit_work(limited):
    _, client, _ = limited
    payload = json.dumps({"user": "admin", "password": ADMIN_PASSWORD}).encode()
    response = client.post(
        "/api/v1/login", content=iter([payload[:10], payload[10:]]), headers=JSON
    )
    assert response.status_code == 200 and response.json()["status"] == "success"
    too_big = iter([b'{"user": "', b"a" * JSON_LIMIT, b'"}'])
    assert_error(client.post("/api/v1/login", content=too_big, headers=JSON), 413)


def test_the_upload_route_takes_the_upload_limit(limited):
    _, client, admin = limited
    file = ("e.zip", os.urandom(4 * JSON_LIMIT), "application/zip")
    data = {"importerKey": "csv"}
    response = client.post(
        "/api/v1/uploadImportFile", headers=admin.headers, files={"file": file}, data=data
    )
    assert response.json() == {"success": True}


# --- malformed bodies -------------------------------------------------------------------

DEEP = b"[" * 10_000
MALFORMED = {
    "deep unclosed": (DEEP, JSON),
    "deep closed": (b'{"user": ' + b"[" * 500 + b"]" * 500 + b"}", JSON),
    "one level too deep": (
        b'{"user": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}",
        JSON,
    ),
    "deep objects": (b'{"a":' * 5000 + b"1" + b"}" * 5000, JSON),
    "bad utf-8": (b'{"user": "\xff\xfe", "password": "x"}', JSON),
    "unknown charset": (b"{}", {"Content-Type": "application/json; charset=nope"}),
    "utf-16 mislabelled": ('{"user": "a"}'.encode("utf-16"), JSON),
    "truncated": (b'{"user": "adm', JSON),
    "empty": (b"", JSON),
    "not an object": (b"[1, 2, 3]", JSON),
    "bare string": (b'"x"', JSON),
    "huge integer": (b'{"user": ' + b"9" * 5000 + b"}", JSON),
    "nan": (b'{"user": NaN, "password": Infinity}', JSON),
    "nul bytes": (b'{"user": "a\\u0000b", "password": "\x00"}', JSON),
    "trailing garbage": (b'{"user": "a", "password": "b"} {}', JSON),
    "form instead of json": (
        b"user=a&password=b",
        {"Content-Type": "application/x-www-form-urlencoded"},
    ),
    "no content type": (b'{"user": "a", "password": "b"}', {"Content-Type": ""}),
    "bad content length": (b"{}", {**JSON, "Content-Length": "12abc"}),
    "multipart without boundary": (b"--x\r\n", {"Content-Type": "multipart/form-data"}),
}
BODY_ROUTES = [
    "/api/v1/login",
    "/api/v1/users.create",
    "/api/v1/users.update",
    "/api/v1/startImport",
    "/api/v1/import.addUsers",
    "/api/v1/uploadImportFile",
]


@pytest.mark.parametrize("route", BODY_ROUTES)
@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_bodies_get_a_4xx_envelope_and_no_traceback(
    client, admin, server_log, route, case
):
    content, headers = MALFORMED[case]
    response = client.post(route, content=content, headers={**admin.headers, **headers})
    assert 400 <= response.status_code < 500, (case, response.text)
    assert_error(response, response.status_code)
    logged = server_log["text"].getvalue()
    assert "Traceback" not in logged and " ERROR " not in logged


def test_without_credentials_deep_json_is_a_400(client, server_log):
    for body in (DEEP, b'{"user": ' + b"[" * 900 + b"]" * 900 + b"}"):
        response = client.post("/api/v1/login", content=body, headers=JSON)
        body = assert_error(response, 400, error_type="error-invalid-params")
        assert "nested deeper" in body["error"]
    assert "Traceback" not in server_log["text"].getvalue()


def test_nesting_up_to_the_limit_is_read(client, admin):
    nested = b'{"input": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    response = client.post("/api/v1/startImport", content=nested, headers={**admin.headers, **JSON})
    assert "nested deeper" not in assert_error(response, 400)["error"]


# --- secrets in answers and logs --------------------------------------------------------

PASSWORD_MISTAKES = [
    ("/api/v1/login", {"user": "admin", "password": [SECRET]}, "password"),
    ("/api/v1/login", {"user": "admin", "password": {"p": SECRET}}, "password"),
    ("/api/v1/login", {"user": "admin", "password": SECRET * 200}, "password"),
    ("/api/v1/login", {"user": "admin", "password": SECRET, "passwrod": SECRET}, "passwrod"),
    (
        "/api/v1/users.create",
        {"username": "b", "email": "b@example.test", "name": "B", "password": SECRET[:5]},
        "password",
    ),
    (
        "/api/v1/users.create",
        {"username": "b", "email": "b@example.test", "name": "B", "password": [SECRET]},
        "password",
    ),
    (
        "/api/v1/users.create",
        {"username": SECRET + "!", "email": "b@example.test", "name": "B", "password": SECRET},
        "username",
    ),
    ("/api/v1/users.update", {"userId": "x", "data": {"password": SECRET[:5]}}, "data.password"),
    ("/api/v1/users.update", {"userId": "x", "data": {"password": 12345678}}, "data.password"),
    (
        "/api/v1/import.addUsers",
        {"users": [{"emails": [], "importIds": ["1"], "password": [SECRET]}]},
        "users.0.password",
    ),
    (
        "/api/v1/import.addUsers",
        {"users": [{"emails": [], "importIds": ["1"], "password": SECRET * 100}]},
        "users.0.password",
    ),
]


@pytest.mark.parametrize(("route", "payload", "field"), PASSWORD_MISTAKES)
def test_a_rejected_value_is_never_echoed_nor_logged(
    client, admin, server_log, route, payload, field
):
    if payload.get("userId") == "x":
        payload = {**payload, "userId": admin.user_id}  # a user that exists
    response = client.post(route, json=payload, headers=admin.headers)
    body = assert_error(response, 400)
    if body.get("errorType") == "error-invalid-params":
        assert f"'{field}'" in body["error"]
    else:
        # A string the schema accepts reaches the domain's checks (the password rule,
        # the user's existence), which never quote it either.
        assert body["errorType"] in (
            "error-password-policy-not-met-minLength",
            "error-invalid-user",
        )
    for shown in (response.text, server_log["text"].getvalue(), server_log["json"].getvalue()):
        assert SECRET[:5] not in shown
        assert "12345678" not in shown


def test_validation_errors_name_the_field_and_the_rule(client, admin):
    def error(route, payload):
        return client.post(route, json=payload, headers=admin.headers).json()["error"]

    assert error(
        "/api/v1/users.create",
        {"username": "b", "email": "b@example.test", "name": "B", "password": 12345678},
    ) == ("Field 'password' must be of type string.")
    assert error("/api/v1/login", {"user": "admin"}) == "Field 'password' is required."
    assert error("/api/v1/login", ["x"]) == "The body must be of type object."
    listed = client.get("/api/v1/users.list?count=abc", headers=admin.headers).json()["error"]
    assert listed.startswith("Query parameter 'count' must be of type integer")


# --- base64 uploads ---------------------------------------------------------------------


def json_upload(client, admin, encoded: str, **fields):
    payload = {"fileName": "e.zip", "contentType": "application/zip", "importerKey": "csv"}
    payload["binaryContent"] = encoded
    payload.update(fields)
    return client.post("/api/v1/uploadImportFile", json=payload, headers=admin.headers)


def test_a_base64_upload_is_decoded_as_a_stream(importing, tmp_path):
    app, client, admin, _ = importing
    export = build_zip(tmp_path / "e.zip", {"users.csv": "x" * 1000, "pad.bin": "y" * 100})
    encoded = base64.b64encode(export.read_bytes()).decode()
    # An encoder that escapes "/" as JSON allows, with the key written last.
    body = (
        json.dumps(
            {
                "fileName": "e.zip",
                "contentType": "application/zip",
                "importerKey": "csv",
                "binaryContent": encoded,
            }
        )
        .replace("/", "\\/")
        .encode()
    )
    response = client.post(
        "/api/v1/uploadImportFile", content=body, headers={**admin.headers, **JSON}
    )
    assert response.json() == {"success": True}
    operation = app.services.imports.current_operation()
    stored = app.services.imports.store_dir / operation["_id"] / operation["file"]
    assert stored.read_bytes() == export.read_bytes()


@pytest.mark.parametrize("encoded", ["QQ", "QQ==QUFB", "QUFB!", "QUFB\n", "é"])
def test_bad_base64_keeps_its_answer_and_the_current_operation(importing, tmp_path, encoded):
    app, client, admin, _ = importing
    good = base64.b64encode(build_zip(tmp_path / "e.zip", {"a.csv": "a"}).read_bytes()).decode()
    assert json_upload(client, admin, good).json() == {"success": True}
    before = app.services.imports.current_operation()["_id"]
    body = assert_error(json_upload(client, admin, encoded), 400)
    assert body["error"] == "binaryContent is not valid base64."
    assert app.services.imports.current_operation()["_id"] == before


def test_a_base64_upload_over_the_cap_answers_file_too_large(limited):
    _, client, admin = limited
    encoded = base64.b64encode(b"z" * (UPLOAD_LIMIT + 3)).decode()
    body = assert_error(json_upload(client, admin, encoded), 400)
    assert body["errorType"] == "error-file-too-large"


def test_a_base64_upload_does_not_hold_its_body_in_memory(importing):
    _, client, admin, _ = importing
    size = 24 * 1024**2
    body = json.dumps(
        {
            "fileName": "e.zip",
            "contentType": "application/zip",
            "importerKey": "csv",
            "binaryContent": base64.b64encode(b"\0" * (size * 3 // 4)).decode(),
        }
    ).encode()
    tracemalloc.start()
    try:
        response = client.post(
            "/api/v1/uploadImportFile", content=body, headers={**admin.headers, **JSON}
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.json() == {"success": True}
    # Parsed whole, the body cost 3.8 times its size here (91 MiB).
    assert peak < size / 4, f"peak {peak / 2**20:.0f} MiB for a {size / 2**20:.0f} MiB body"


# --- log lines --------------------------------------------------------------------------


def test_control_characters_from_a_request_cannot_forge_log_lines(client, admin, server_log):
    forged = "/api/v1/me%0d%0a2026-01-01 00:00:00 INFO ferry.access: FORGED%1b[2J%c2%85"
    client.get(forged, headers=admin.headers)
    client.get("/api/v1/users.list?q=%0aFORGED", headers=admin.headers)
    for stream in server_log.values():
        lines = stream.getvalue().splitlines()
        assert not [line for line in lines if line.startswith("2026-01-01")]
        assert not any(char in stream.getvalue() for char in "\r\x1b\x85")


def test_log_lines_are_bounded(client, admin, server_log):
    client.get("/api/v1/" + "a" * 20_000 + "?x=" + "b" * 20_000, headers=admin.headers)
    for stream in server_log.values():
        lines = stream.getvalue().splitlines()
        assert lines and max(len(line) for line in lines) <= LINE_LIMIT
        assert any(line.endswith(("…", '…"}')) or "…" in line for line in lines)
