"""Rocket.Chat's own TypeScript client, @rocket.chat/api-client (unmodified), reads a
workspace imported into a live `ferry serve`, as the admin and as an imported plain user
(tests/contract/typescript/rocketchat_flow.ts, type-checked against Rocket.Chat's endpoint
typings and run by rocketchat_check.sh)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.api.test_import_api import csv_export
from tests.live.test_rocketchat_client import (  # noqa: F401  (the live server fixture)
    ADMIN,
    MEMBER_PASSWORD,
    import_csv,
    server,
)

pytestmark = [
    pytest.mark.live,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("npm") is None, reason="the client runs on Node"),
]
CHECK = Path(__file__).resolve().parent / "typescript" / "rocketchat_check.sh"


def test_rocketchat_api_client_reads_an_import_as_admin_and_as_a_member(server, tmp_path):  # noqa: F811
    import_csv(server, csv_export(tmp_path))
    login = requests.post(
        f"{server}/api/v1/login",
        json={"user": "admin", "password": ADMIN["FERRY_ADMIN_PASSWORD"]},
        timeout=30,
    ).json()["data"]
    headers = {"X-User-Id": login["userId"], "X-Auth-Token": login["authToken"]}
    billy = requests.get(
        f"{server}/api/v1/users.info", params={"username": "billy.bob"}, headers=headers, timeout=30
    ).json()["user"]
    updated = requests.post(
        f"{server}/api/v1/users.update",
        json={"userId": billy["_id"], "data": {"password": MEMBER_PASSWORD}},
        headers=headers,
        timeout=30,
    )
    assert updated.status_code == 200, updated.text
    ran = subprocess.run(
        [str(CHECK), server, "admin", ADMIN["FERRY_ADMIN_PASSWORD"], "billy.bob", MEMBER_PASSWORD],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "@rocket.chat/api-client: " in ran.stdout
    summary = ran.stdout.strip().splitlines()[-1]
    # Every other endpoint of the families was called too, by both users.
    assert int(summary.split(", ")[-1].split()[0]) >= 100, summary
