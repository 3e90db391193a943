"""A real `ferry serve --log-format json`: every log line is JSON, uvicorn's access log is
replaced by Ferry's, and the metrics token and passwords stay out of the output."""

import json
import signal

import pytest
import requests

from tests.live.test_serve import free_port, start, wait_until_up

pytestmark = pytest.mark.live

PASSWORD = "live-admin-password-1"
METRICS_TOKEN = "live-metrics-token-0123456789"


def test_json_logs_from_a_real_server(tmp_path):
    port = free_port()
    process = start(
        tmp_path / "data",
        port,
        "--log-format",
        "json",
        env={
            "FERRY_ADMIN_USERNAME": "root",
            "FERRY_ADMIN_PASSWORD": PASSWORD,
            "FERRY_METRICS_TOKEN": METRICS_TOKEN,
        },
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(port, process)
        assert requests.get(f"{base}/api/v1/health", timeout=5).json()["status"] == "ok"
        scrape = requests.get(
            f"{base}/api/v1/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
            timeout=5,
        )
        assert scrape.status_code == 200 and "ferry_http_requests_total" in scrape.text
        login = requests.post(
            f"{base}/api/v1/login", json={"user": "root", "password": PASSWORD}, timeout=5
        )
        token = login.json()["data"]["authToken"]
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    # The banner is printed for people; everything logged is JSON.
    logged = [line for line in output.splitlines() if line.startswith("{")]
    assert logged
    records = [json.loads(line) for line in logged]
    assert any(r["logger"].startswith("uvicorn") for r in records)
    requests_logged = [r for r in records if r["event"] == "http.request"]
    operations = {r["operation"] for r in requests_logged}
    assert {"handlers.server.get_health", "handlers.server.get_metrics"} <= operations
    metrics_line = next(r for r in requests_logged if r["path"] == "/api/v1/metrics")
    assert metrics_line["user_id"] == "metrics-token" and metrics_line["status"] == 200
    assert "HTTP/1.1" not in output  # no uvicorn access-log lines
    for secret in (PASSWORD, METRICS_TOKEN, token):
        assert secret not in output
