"""An existing Rocket.Chat client library (rocketchat_API, unmodified) logs in to Ferry and
reads a workspace imported through the import API."""

import signal
import subprocess
import time

import pytest
import requests
from rocketchat_API.rocketchat import RocketChat

from tests.api.test_import_api import csv_export
from tests.live.test_serve import free_port, start, wait_until_up

pytestmark = pytest.mark.live
ADMIN = {"FERRY_ADMIN_USERNAME": "admin", "FERRY_ADMIN_PASSWORD": "rocket-client-pass"}
MEMBER_PASSWORD = "billy-bob-reads-his-rooms"


@pytest.fixture
def server(tmp_path):
    port = free_port()
    process = start(tmp_path / "data", port, env=ADMIN, output=subprocess.DEVNULL)
    wait_until_up(port, process)
    yield f"http://127.0.0.1:{port}"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)


def import_csv(base: str, path) -> None:
    login = requests.post(
        f"{base}/api/v1/login", json={"user": "admin", "password": ADMIN["FERRY_ADMIN_PASSWORD"]}
    )
    headers = {"Authorization": f"Bearer {login.json()['data']['authToken']}"}
    with path.open("rb") as handle:
        requests.post(
            f"{base}/api/v1/uploadImportFile",
            headers=headers,
            files={"file": (path.name, handle, "application/zip")},
            data={"importerKey": "csv"},
            timeout=30,
        ).raise_for_status()
    deadline = time.monotonic() + 30
    while requests.get(f"{base}/api/v1/getImportFileData", headers=headers).json().get("waiting"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    everything = {"input": {"users": {"all": True}, "channels": {"all": True}}}
    requests.post(f"{base}/api/v1/startImport", headers=headers, json=everything).raise_for_status()
    while requests.get(f"{base}/api/v1/import.status", headers=headers).json()["state"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_rocketchat_api_reads_an_imported_workspace(server, tmp_path):
    import_csv(server, csv_export(tmp_path))
    admin = RocketChat("admin", ADMIN["FERRY_ADMIN_PASSWORD"], server_url=server)
    assert admin.me()["username"] == "admin"
    # Private groups and direct messages are read by their members: the admin gives the
    # imported billy.bob a password, and the client reads the workspace as him.
    billy = admin.users_info(username="billy.bob")["user"]
    assert admin.users_update(billy["_id"], password=MEMBER_PASSWORD)["success"]
    rocket = RocketChat("billy.bob", MEMBER_PASSWORD, server_url=server)
    assert rocket.me()["username"] == "billy.bob"

    channels = list(rocket.channels_list())
    groups = list(rocket.groups_list())
    rooms = {room["name"]: room for room in channels + groups}
    assert rooms, "the imported rooms are listed"
    room = next(r for r in channels + groups if r.get("msgs"))
    if room["t"] == "c":
        assert rocket.channels_info(room_id=room["_id"])["channel"]["name"] == room["name"]
        history = list(rocket.channels_history(room["_id"]))
    else:
        assert rocket.groups_info(room_id=room["_id"])["group"]["name"] == room["name"]
        history = list(rocket.groups_history(room["_id"]))
    assert [m["msg"] for m in history] == ["hello, room"]
    assert history[0]["u"]["username"] == "billy.bob"

    dms = list(rocket.dm_list())
    assert len(dms) == 1
    messages = list(rocket.dm_history(dms[0]["_id"]))
    assert len(messages) == 2

    users = rocket.users_info(username="billy.bob")
    assert users["user"]["username"] == "billy.bob"
