"""openapi-fetch (typed by openapi-typescript) and the @hey-api/openapi-ts SDK each drive
a live server through a download, a batch whose download they pause, resume and cancel,
and a CSV import (tests/contract/typescript/fetch_flow.ts and heyapi_flow.ts, compiled
and run by check.sh)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.api.test_import_api import csv_export
from tests.contract.test_generated_python_client import ADMIN, PASSWORD, server  # noqa: F401
from tests.support.remote import RemoteServer, pattern_bytes

pytestmark = [
    pytest.mark.live,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("npx") is None, reason="the TypeScript clients need Node"),
]
CHECK = Path(__file__).resolve().parent / "typescript" / "check.sh"


def test_typescript_clients_download_and_import(server, tmp_path):  # noqa: F811
    base, data = server
    export = base64.b64encode(csv_export(tmp_path).read_bytes()).decode()
    with RemoteServer() as remote:
        url = remote.file("/reports/q3.bin", pattern_bytes(100_000))
        # Slow enough to be caught running, paused and resumed by range.
        slow = remote.ranged("/big.bin", 2_000_000, pause=0.05, validators=[("ETag", '"v1"')])
        ran = subprocess.run(
            [str(CHECK), base, ADMIN, PASSWORD, url, export, slow],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "openapi-fetch drove a download and a CSV import" in ran.stdout
    assert "@hey-api/openapi-ts drove a download and a CSV import" in ran.stdout
    for directory in ("incoming", "incoming-sdk"):
        assert (data / "files" / directory / "q3.bin").stat().st_size == 100_000
