"""Schemathesis's stateful phase, run as the README says (no project hooks), follows the
spec's `links` from one operation's answer to the next, on a server that holds what a
user's would: an imported workspace the admin is a member of, and downloads that start."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.contract.live_schemathesis import ADMIN, PASSWORD, _login, _schemathesis, serving
from tests.live.test_serve import free_port
from tests.support.importers import build_zip

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]
# The phase is bounded in time, so how many links it reaches depends on the machine's
# speed: a quiet run covers 20 or more; this leaves room for a busy one.
MIN_COVERED_LINKS = 12
# The examples download from files.example.test. `.test` is reserved (RFC 6761) and never
# resolves: a start is accepted and answers its id, and the transfer then fails at the
# lookup, so the download links have something to follow and nothing leaves the machine.
EXAMPLE_DOMAIN = "example.test"


def _workspace_export(folder: Path) -> Path:
    """A CSV export with a public channel, a private group and a direct message, the
    admin a member of the first two (an import adds memberships to an existing account)."""
    return build_zip(
        folder / "workspace.zip",
        {
            "users.csv": (
                "billy.bob, billy.bob@example.test, Billy Bob\n"
                f"{ADMIN}, admin@example.test, Admin\n"
            ),
            "channels.csv": (
                f'"general","billy.bob","public","billy.bob;{ADMIN}"\n'
                f'"project-x","billy.bob","private","billy.bob;{ADMIN}"\n'
            ),
            "general/messages.csv": 'billy.bob,1767605400000,"welcome to general"\n',
            "project-x/messages.csv": 'billy.bob,1767605460000,"hello, room"\n',
            "directmessages/messages1.csv": f'"billy.bob","{ADMIN}","1767605520000","hi"\n',
        },
    )


def _import_workspace(base: str, admin: dict[str, str], folder: Path) -> None:
    export = _workspace_export(folder)
    uploaded = requests.post(
        f"{base}/api/v1/uploadImportFile",
        headers=admin,
        json={
            "binaryContent": base64.b64encode(export.read_bytes()).decode(),
            "contentType": "application/zip",
            "fileName": export.name,
            "importerKey": "csv",
        },
        timeout=30,
    )
    uploaded.raise_for_status()
    _until(lambda: "waiting" not in _get(base, admin, "getImportFileData"))
    everything = {"users": {"all": True}, "channels": {"all": True}}
    started = requests.post(
        f"{base}/api/v1/startImport", headers=admin, json={"input": everything}, timeout=30
    )
    started.raise_for_status()
    _until(lambda: _get(base, admin, "getImportProgress")["step"] == "importer_done")


def _get(base: str, headers: dict[str, str], operation: str) -> dict:
    return requests.get(f"{base}/api/v1/{operation}", headers=headers, timeout=10).json()


def _until(probe, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError("the workspace import did not finish")
        time.sleep(0.1)


def _stateful_run() -> tuple[int, str]:
    data = Path(tempfile.mkdtemp(prefix="ferry-stateful-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FERRY_ADMIN_USERNAME": ADMIN, "FERRY_ADMIN_PASSWORD": PASSWORD}
    env.pop("SCHEMATHESIS_HOOKS", None)
    allowed = f"--download-allowed-domains=localhost,{EXAMPLE_DOMAIN}"
    with tempfile.TemporaryDirectory() as exports, serving(data, port, env, allowed):
        admin = _login(base)
        _import_workspace(base, admin, Path(exports))
        command = [
            _schemathesis(),
            "--config-file=tests/contract/schemathesis-live.toml",
            "run",
            f"{base}/api/v1/openapi.json",
            "--wait-for-schema=30",
            "--checks=all",
            "--phases=stateful",
            "--generation-deterministic",
            "--max-examples=15",
            "--max-time=90",
            "--no-color",
            "-H",
            f"X-User-Id: {admin['X-User-Id']}",
            "-H",
            f"X-Auth-Token: {admin['X-Auth-Token']}",
        ]
        ran = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        return ran.returncode, ran.stdout + ran.stderr


def test_the_stateful_phase_follows_at_least_ten_links():
    returncode, output = _stateful_run()
    assert returncode == 0, output
    covered = re.search(r"API Links:\s+(\d+) covered / (\d+) selected", output)
    assert covered is not None, output
    followed, selected = int(covered.group(1)), int(covered.group(2))
    print(f"Schemathesis's stateful phase followed {followed} of {selected} links")
    assert followed >= MIN_COVERED_LINKS, output
