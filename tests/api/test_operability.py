"""Operating Ferry: the health check, Prometheus metrics, and the structured logs."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ferry import __version__
from ferry.kernel.logs import configure_logging
from handlers.app import create_app
from tests.conftest import ADMIN_PASSWORD, log_in, make_config
from tests.support.envelope import assert_error
from tests.support.remote import RemoteServer, pattern_bytes, wait_until

METRICS_TOKEN = "scraper-token-0123456789abcdef"
SLACK_SECRET = "xoxe-1-secret-slack-file-token"
USERINFO_SECRET = "pa55-in-the-url"


@pytest.fixture
def config(tmp_path):
    return make_config(
        tmp_path / "data",
        allow_download=True,
        allow_private_networks=True,
        metrics_token=METRICS_TOKEN,
    )


@pytest.fixture
def remote():
    with RemoteServer() as server:
        yield server


@contextlib.contextmanager
def captured_logs(log_format: str):
    """Everything logged, formatted as `ferry serve --log-format` would write it."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    stream = io.StringIO()
    handler = configure_logging(log_format, stream)
    # Pytest's own capture handlers stay, so failures still show the logs.
    for old in saved[1]:
        root.addHandler(old)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def metrics(client, headers) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} from a scrape."""
    response = client.get("/api/v1/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def start_download(client, caller, url: str):
    return client.get(f"/Downloads?download={quote(url, safe='')}", headers=caller.bearer)


def finished(client, caller, download_id: str) -> dict:
    def entry():
        history = client.get("/?download_history=", headers=caller.bearer).json()["history"]
        return next((h for h in history if h["id"] == download_id), None)

    assert wait_until(lambda: entry() is not None, timeout=30)
    return entry()


# --- health -------------------------------------------------------------------------


def test_health_is_public_and_says_ok_with_version_and_uptime(client, config):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["uptime_seconds"] >= 0
    expected = {"data_dir_writable": True, "disk_space_available": True}
    if config.database_url:
        expected["database_reachable"] = True
    assert body["checks"] == expected
    assert body["active_downloads"] == 0


@pytest.mark.parametrize("gone", ["files_dir", "state_dir"])
def test_health_is_degraded_when_files_or_state_is_gone(client, config, gone):
    shutil.rmtree(getattr(config, gone))
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["data_dir_writable"] is False


def test_health_is_degraded_when_the_disk_is_nearly_full(client, monkeypatch):
    real_statvfs = os.statvfs

    def nearly_full(path):
        usage = real_statvfs(path)
        # 1 MiB left: below the 16 MiB a state rewrite or a download may need.
        fields = list(usage)
        fields[4] = (1024**2) // usage.f_frsize  # f_bavail
        return os.statvfs_result(fields)

    monkeypatch.setattr(os, "statvfs", nearly_full)
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["data_dir_writable"] is True
    assert body["checks"]["disk_space_available"] is False


# --- metrics access -----------------------------------------------------------------


def test_metrics_need_an_admin_or_the_metrics_token(client, admin, make_user):
    assert_error(client.get("/api/v1/metrics"), 401)
    reader = make_user("reader", ["user"])
    assert_error(client.get("/api/v1/metrics", headers=reader.headers), 403)
    assert_error(client.get("/api/v1/metrics", headers=reader.bearer), 403)
    wrong = {"Authorization": "Bearer " + METRICS_TOKEN[:-1] + "x"}
    assert_error(client.get("/api/v1/metrics", headers=wrong), 401)
    assert metrics(client, admin.headers)
    assert metrics(client, admin.bearer)
    assert metrics(client, {"Authorization": f"Bearer {METRICS_TOKEN}"})


def test_the_metrics_token_opens_nothing_else(client):
    token = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert_error(client.get("/api/v1/me", headers=token), 401)
    assert_error(client.get("/api/v1/downloads", headers=token), 401)
    assert_error(client.get("/", headers=token), 401)


def test_without_a_configured_token_only_admins_read_metrics(tmp_path):
    app = create_app(make_config(tmp_path / "plain"))
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    try:
        with app.test_client() as client:
            token = {"Authorization": f"Bearer {METRICS_TOKEN}"}
            assert_error(client.get("/api/v1/metrics", headers=token), 401)
            admin = log_in(client, "admin", ADMIN_PASSWORD)
            assert metrics(client, admin.bearer)
    finally:
        app.services.close()


# --- metrics values -----------------------------------------------------------------


def test_download_counters_move_after_a_completed_and_a_failed_download(client, admin, remote):
    size = 200_000
    good = remote.file("/data.bin", pattern_bytes(size))
    missing = remote.url("/missing.bin")
    before = metrics(client, admin.bearer)
    assert before[("ferry_downloads_active", (("status", "downloading"),))] == 0

    ids = []
    for url in (good, missing):
        response = start_download(client, admin, url)
        assert response.status_code == 200, response.text
        ids.append(response.json()["download_id"])
    assert finished(client, admin, ids[0])["status"] == "completed"
    failure = finished(client, admin, ids[1])
    assert failure["status"] == "failed"

    after = metrics(client, admin.bearer)
    file_kind = (("kind", "file"),)
    assert after[("ferry_downloads_started_total", file_kind)] == 2
    assert after[("ferry_downloads_completed_total", file_kind)] == 1
    failed_key = (("error", failure["error"]), ("kind", "file"))
    assert after[("ferry_downloads_failed_total", failed_key)] == 1
    assert after[("ferry_download_bytes_total", ())] >= size
    assert after[("ferry_downloads_active", (("status", "downloading"),))] == 0
    assert after[("ferry_downloads_active", (("status", "starting"),))] == 0
    browse = (("operation", "handlers.files.browse"), ("status", "200"))
    assert after[("ferry_http_requests_total", browse)] >= 2
    latency = (("operation", "handlers.files.browse"),)
    assert after[("ferry_http_request_duration_seconds_count", latency)] >= 2


def test_import_operations_are_counted_by_status(client, admin):
    client.post("/api/v1/import.new", headers=admin.headers)
    users = [{"emails": ["dana@example.test"], "importIds": ["u-dana"], "username": "dana"}]
    client.post("/api/v1/import.addUsers", headers=admin.headers, json={"users": users})
    client.post("/api/v1/import.run", headers=admin.headers)
    assert wait_until(
        lambda: client.get("/api/v1/import.status", headers=admin.headers).json()["state"] == "done"
    )
    samples = metrics(client, admin.bearer)
    for status in ("importer_new", "importer_user_selection", "importer_done"):
        key = ("ferry_import_operations_total", (("importer", "api"), ("status", status)))
        assert samples[key] == 1, status


# --- logs ---------------------------------------------------------------------------


def test_each_request_is_one_json_line_with_operation_and_user(client, admin):
    with captured_logs("json") as stream:
        client.get("/api/v1/users.list?count=5", headers=admin.headers)
        client.get("/api/v1/health")
    requests = [line for line in json_lines(stream) if line["event"] == "http.request"]
    assert len(requests) == 2
    me, health = requests
    assert me["method"] == "GET" and me["path"] == "/api/v1/users.list?count=5"
    assert me["status"] == 200 and me["operation"] == "handlers.users.list_users"
    assert me["user_id"] == admin.user_id
    assert isinstance(me["duration_ms"], float)
    assert health["operation"] == "handlers.server.get_health" and health["user_id"] is None


def test_text_logs_are_one_readable_line_per_request(client):
    with captured_logs("text") as stream:
        client.get("/api/v1/health")
    (line,) = [x for x in stream.getvalue().splitlines() if "ferry.access" in x]
    assert "GET /api/v1/health 200" in line
    assert "operation=handlers.server.get_health" in line


def test_download_state_changes_are_logged_with_the_url_redacted(client, admin, remote):
    good = remote.file("/export.zip", b"zip bytes") + f"?t={SLACK_SECRET}&page=2"
    gone = remote.url("/gone.zip") + f"?token={SLACK_SECRET}"
    with_userinfo = remote.url("/x.zip").replace("://", f"://bob:{USERINFO_SECRET}@")
    with captured_logs("json") as stream:
        ok_id = start_download(client, admin, good).json()["download_id"]
        gone_id = start_download(client, admin, gone).json()["download_id"]
        assert start_download(client, admin, with_userinfo).status_code == 400
        finished(client, admin, ok_id)
        finished(client, admin, gone_id)
    text = stream.getvalue()
    for secret in (SLACK_SECRET, quote(SLACK_SECRET), USERINFO_SECRET, "bob:"):
        assert secret not in text
    lines = json_lines(stream)
    events = {(line["event"], line.get("download_id")) for line in lines}
    assert ("download.started", ok_id) in events
    assert ("download.completed", ok_id) in events
    assert ("download.failed", gone_id) in events
    started = next(
        x for x in lines if x["event"] == "download.started" and x["download_id"] == ok_id
    )
    assert started["url"].endswith("/export.zip?t=***&page=2")
    assert started["kind"] == "file"
    failed = next(x for x in lines if x["event"] == "download.failed")
    assert failed["error"] and failed["level"] == "warning"
    refused = [x for x in lines if x["event"] == "http.request" and x["status"] == 400]
    assert refused and "***@" in refused[0]["path"]


def test_import_status_changes_are_logged(client, admin):
    with captured_logs("json") as stream:
        client.post("/api/v1/import.new", headers=admin.headers)
    (line,) = [x for x in json_lines(stream) if x["event"] == "import.status"]
    assert line["status"] == "importer_new" and line["importer"] == "api"
    assert line["operation_id"]


def test_passwords_and_tokens_never_reach_the_logs(client):
    with captured_logs("json") as stream:
        caller = log_in(client, "admin", ADMIN_PASSWORD)
        client.get("/api/v1/me", headers=caller.headers)
        client.get("/api/v1/me", headers=caller.bearer)
        client.post("/api/v1/login", json={"user": "admin", "password": "wrong-" + caller.token})
        client.post("/api/v1/logout", headers=caller.bearer)
        client.get("/api/v1/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    text = stream.getvalue()
    assert "/api/v1/login" in text
    for secret in (ADMIN_PASSWORD, caller.token, METRICS_TOKEN):
        assert secret not in text
