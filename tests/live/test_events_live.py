"""The event stream against a real `ferry serve`: events arrive while the stream is
open, and SIGTERM ends an open stream so the server still stops at once."""

from __future__ import annotations

import json
import re
import signal
from urllib.parse import quote

import pytest
import requests

from tests.live.test_serve import free_port, launch, start
from tests.support.remote import RemoteServer

pytestmark = pytest.mark.live


@pytest.fixture
def serving(tmp_path):
    base, banner, process = launch(
        tmp_path / "data", "--allow-download", "--allow-private-networks"
    )
    password = re.search(r"password: (\S+)", banner).group(1)
    login = requests.post(
        f"{base}/api/v1/login", json={"user": "admin", "password": password}, timeout=5
    )
    token = login.json()["data"]["authToken"]
    yield base, {"Authorization": f"Bearer {token}"}, process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def read_events(lines):
    """(event, data) pairs from an open stream's lines, as they arrive."""
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield event, json.loads(line.removeprefix("data: "))


def test_an_open_stream_tells_a_download_and_sigterm_ends_it(serving):
    base, auth, process = serving
    with RemoteServer() as remote:
        url = remote.generated("/data.bin", 100_000)
        stream = requests.get(f"{base}/api/v1/events", headers=auth, stream=True, timeout=30)
        assert stream.status_code == 200
        lines = stream.iter_lines(decode_unicode=True)
        assert next(lines) == ": connected"
        started = requests.get(
            f"{base}/in?download={quote(url, safe='')}", headers=auth, timeout=10
        )
        download_id = started.json()["download_id"]
        told = []
        for event, data in read_events(lines):
            assert data["download"]["id"] == download_id
            told.append(event)
            if event == "download.completed":
                break
        assert told[0] == "download.started"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert [line for line in lines if line] == []  # the stream ended, not hung
        stream.close()


def test_a_webhook_to_a_private_address_is_a_usage_error_at_start(tmp_path):
    process = start(tmp_path / "data", free_port(), "--webhook-url", "http://127.0.0.1:9/hook")
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 2
    assert "--webhook-url" in output and "127.0.0.1" in output
