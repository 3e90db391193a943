"""GET /api/v1/events: order, replay after Last-Event-ID, keep-alive, who hears what.

The in-process client reads a response once it has ended, so these streams are asked
for with `timeout` (or a replay); tests/live/test_events_live.py reads an open one.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import quote

import pytest

from ferry.kernel.statuses import EventType
from tests.conftest import make_config
from tests.support.remote import wait_until

# Two plain users, ann and bob.
pytest_plugins = ("tests.support.download_fixtures", "tests.api.test_download_visibility")


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path / "data", allow_download=True, allow_private_networks=True)


def parse(text: str) -> list[dict]:
    """The events of a stream: {"id", "event", "data"} each; comments as {"comment"}."""
    events = []
    for block in text.split("\n\n"):
        if not block:
            continue
        fields: dict = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                fields["comment"] = line[1:].strip()
            else:
                name, _, value = line.partition(": ")
                fields[name] = json.loads(value) if name == "data" else value
        events.append(fields)
    return events


def stream(client, caller, query: str = "last_event_id=0&timeout=0.2", headers=None):
    response = client.get(f"/api/v1/events?{query}", headers={**caller.bearer, **(headers or {})})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return [e for e in parse(response.text) if "comment" not in e]


def download(app, client, caller, url: str, directory: str = "in") -> str:
    response = client.get(f"/{directory}?download={quote(url, safe='')}", headers=caller.bearer)
    assert response.status_code == 200, response.text
    download_id = response.json()["download_id"]
    assert wait_until(
        lambda: (
            client.get(f"/api/v1/downloads/{download_id}", headers=caller.bearer).json()[
                "download"
            ]["status"]
            == "completed"
        )
    )
    return download_id


def test_a_download_is_told_in_order_with_the_record_get_shows(app, client, ann, remote):
    download_id = download(app, client, ann, remote.generated("/a.bin", 4096))
    events = [e for e in stream(client, ann) if e["data"]["download"]["id"] == download_id]
    types = [e["event"] for e in events]
    assert types[0] == EventType.DOWNLOAD_STARTED
    assert types[-1] == EventType.DOWNLOAD_COMPLETED
    assert set(types[1:-1]) == {EventType.DOWNLOAD_PROGRESS}
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(e["data"]["type"] == e["event"] for e in events)
    assert events[0]["data"]["download"]["status"] == "starting"
    last = events[-1]["data"]["download"]
    shown = client.get(f"/api/v1/downloads/{download_id}", headers=ann.bearer).json()
    assert last == shown["download"]
    assert last["current_size"] == 4096


def test_last_event_id_replays_only_what_came_after(app, client, ann, remote):
    first = download(app, client, ann, remote.generated("/a.bin", 10))
    seen = stream(client, ann)
    last_id = seen[-1]["id"]
    second = download(app, client, ann, remote.generated("/b.bin", 10))
    again = stream(client, ann, "timeout=0.2", headers={"Last-Event-ID": last_id})
    assert {e["data"]["download"]["id"] for e in again} == {second}
    assert first in {e["data"]["download"]["id"] for e in seen}
    by_query = stream(client, ann, f"last_event_id={last_id}&timeout=0.2")
    assert [e["id"] for e in by_query] == [e["id"] for e in again]


def test_without_an_id_nothing_old_is_replayed(app, client, ann, remote):
    download(app, client, ann, remote.generated("/a.bin", 10))
    assert stream(client, ann, "timeout=0.1") == []


def test_an_id_from_before_a_restart_replays_everything_held(app, client, ann, remote):
    download(app, client, ann, remote.generated("/a.bin", 10))
    assert stream(client, ann, "last_event_id=999999&timeout=0.1") == stream(client, ann)


def test_each_user_hears_of_their_own_downloads_and_admins_of_all(
    app, client, admin, ann, bob, remote
):
    ann_id = download(app, client, ann, remote.generated("/a.bin", 10) + "?token=ann-secret")
    bob_id = download(app, client, bob, remote.generated("/b.bin", 10))
    assert {e["data"]["download"]["id"] for e in stream(client, ann)} == {ann_id}
    assert {e["data"]["download"]["id"] for e in stream(client, bob)} == {bob_id}
    seen_by_admin = stream(client, admin)
    assert {e["data"]["download"]["id"] for e in seen_by_admin} == {ann_id, bob_id}
    assert "ann-secret" not in json.dumps(seen_by_admin)
    assert "ann-secret" in json.dumps(stream(client, ann))


def test_import_events_need_the_import_permission(app, client, admin, ann):
    from ferry.events import OPERATION

    app.services.events.publish(
        EventType.IMPORT_STEP, OPERATION, {"id": "op1", "step": "importer_new"}
    )
    assert stream(client, ann) == []
    events = stream(client, admin)
    assert [e["event"] for e in events] == [EventType.IMPORT_STEP]
    assert events[0]["data"] == {
        "type": "import.step",
        "operation": {"id": "op1", "step": "importer_new"},
    }


def test_a_quiet_stream_gets_keep_alive_comments(app, client, ann):
    app.services.events.keepalive_seconds = 0.01
    response = client.get("/api/v1/events?timeout=0.5", headers=ann.bearer)
    comments = [e["comment"] for e in parse(response.text) if "comment" in e]
    assert "keep-alive" in comments


def test_a_closed_bus_ends_the_stream(app, client, ann):
    app.services.events.close()
    response = client.get("/api/v1/events", headers=ann.bearer)
    assert response.status_code == 200
    assert [e for e in parse(response.text) if "comment" not in e] == []


@pytest.mark.parametrize("query", ["timeout=0", "timeout=abc", "last_event_id=-1"])
def test_bad_parameters_are_refused(client, ann, query):
    response = client.get(f"/api/v1/events?{query}", headers=ann.bearer)
    assert response.status_code == 400


def test_the_stream_needs_a_login(client):
    assert client.get("/api/v1/events?timeout=0.1").status_code == 401


def test_a_stream_ends_at_the_next_keep_alive_after_its_token_is_revoked(app, client, ann):
    app.services.events.keepalive_seconds = 0.01
    revoked = threading.Event()

    def log_out_then_publish() -> None:
        app.services.accounts.logout(ann.token)
        revoked.set()
        threading.Event().wait(0.5)
        record = {"id": "late", "owner_id": ann.user_id, "status": "starting"}
        app.services.events.publish(EventType.DOWNLOAD_STARTED, "download", record)

    timer = threading.Timer(0.1, log_out_then_publish)
    timer.start()
    response = client.get("/api/v1/events?timeout=30", headers=ann.bearer)
    timer.join()
    assert revoked.is_set()
    assert response.status_code == 200
    assert "late" not in response.text


def test_head_answers_the_stream_s_headers_without_holding_it_open(client, ann):
    response = client.head("/api/v1/events", headers=ann.bearer)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
