"""Every curl example of the README, replayed in order through Prism's validating proxy
in front of a live `ferry serve`: Prism checks each request and each answer against
openapi.yaml and reports what does not match in an `sl-violations` header. None may.

The workspace the examples read is imported first (a generated Slack export), and the
README's placeholders (`7a3f...`, `roomId=...`, a password) are filled with what the
server really holds. Paths below a folder are sent with their slashes encoded, as the
`/{path}` parameter takes them (OpenAPI's templates match one segment). WebDAV's MKCOL
and MOVE have no place in OpenAPI; the POST forms the README names beside them are
replayed instead. The event stream never ends, so it is not replayed here (the event
tests read it)."""

from __future__ import annotations

import json
import mimetypes
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import yaml

from ferry.chat.generate import write_slack_export
from tests.contract.readme_examples import Example, examples
from tests.live.test_serve import free_port, start, wait_until_up
from tests.support.remote import RemoteServer

pytestmark = [
    pytest.mark.live,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("npx") is None, reason="Prism runs on Node"),
]
ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "openapi.yaml"
PRISM_VERSION = "5.14.2"
ADMIN, PASSWORD = "admin", "prism-admin-password"
OPENAPI_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# Named beside a WebDAV verb in the README: "# or POST /reports/2025?mkdir=".
_ALTERNATIVE = re.compile(r"#\s*or\s+(GET|POST|PUT|DELETE|PATCH)\s+(\S+)")


@pytest.fixture
def ferry(tmp_path):
    data = tmp_path / "data"
    song = data / "files" / "music" / "2024" / "song.mp3"
    song.parent.mkdir(parents=True)
    song.write_bytes(bytes(range(256)) * 40)
    port = free_port()
    process = start(
        data,
        port,
        "--allow-download",
        "--allow-private-networks",
        "--download-allowed-domains=localhost",
        env={"FERRY_ADMIN_USERNAME": ADMIN, "FERRY_ADMIN_PASSWORD": PASSWORD},
        output=subprocess.DEVNULL,
    )
    try:
        wait_until_up(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


@pytest.fixture
def prism(ferry, tmp_path):
    port = free_port()
    log = tmp_path / "prism.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            ["npx", "--yes", f"@stoplight/prism-cli@{PRISM_VERSION}", "proxy", str(SPEC), ferry]
            + ["--host", "127.0.0.1", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while "Prism is listening" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        # npx starts Prism as its child: end the whole group this test started.
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)


def spec_paths() -> list[re.Pattern]:
    paths = yaml.safe_load(SPEC.read_text())["paths"]
    return [re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$") for p in paths]


def as_templated(path: str, templates: list[re.Pattern]) -> str:
    """`path`, its nested segments encoded into one where no spec path takes it as is."""
    if any(template.match(path) for template in templates):
        return path
    return "/" + quote(path.lstrip("/"), safe="")


class Workspace:
    """What the README's placeholders stand for on this server."""

    def __init__(self, base: str, tmp_path: Path):
        login = requests.post(
            f"{base}/api/v1/login", json={"user": ADMIN, "password": PASSWORD}, timeout=30
        ).json()["data"]
        self.token, self.user_id = login["authToken"], login["userId"]
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.base = base
        self.export = tmp_path / "slack-export.zip"
        write_slack_export(self.export, messages=300, channels=3, users=6, seed=3)
        self._import()
        messages = [
            message
            for channel in self._get("/api/v1/channels.list")["channels"]
            for message in self._get("/api/v1/channels.history", roomId=channel["_id"])["messages"]
        ]
        threads = [message for message in messages if message.get("tcount")]
        self.room_id = threads[0]["rid"]
        self.message_id = messages[0]["_id"]
        self.thread_id = threads[0]["_id"]

    def _get(self, path: str, **params) -> dict:
        response = requests.get(
            f"{self.base}{path}", headers=self.headers, params=params, timeout=30
        )
        assert response.status_code == 200, response.text
        return response.json()

    def _import(self) -> None:
        with self.export.open("rb") as handle:
            uploaded = requests.post(
                f"{self.base}/api/v1/uploadImportFile",
                headers=self.headers,
                files={"file": (self.export.name, handle, "application/zip")},
                data={"importerKey": "slack"},
                timeout=60,
            )
        assert uploaded.status_code == 200, uploaded.text
        self._until_state("ready")
        started = requests.post(
            f"{self.base}/api/v1/startImport",
            headers=self.headers,
            json={"input": {"users": {"all": True}, "channels": {"all": True}}},
            timeout=30,
        )
        assert started.status_code == 200, started.text
        self._until_state("done")

    def _until_state(self, wanted: str) -> None:
        deadline = time.monotonic() + 60
        while (state := self._get("/api/v1/import.status")["state"]) != wanted:
            assert state != "error" and time.monotonic() < deadline, state
            time.sleep(0.1)

    def start_download(self, url: str) -> str:
        started = self._get("/incoming", download=url)
        return started["download_id"]


def filled(example: Example, workspace: Workspace, download_id: str) -> Example:
    """The example with the README's placeholders replaced by real values."""
    places = {
        "7a3f...": download_id,
        "roomId=...": f"roomId={workspace.room_id}",
        "msgId=...": f"msgId={workspace.message_id}",
        "tmid=...": f"tmid={workspace.thread_id}",
    }
    for placeholder, value in places.items():
        example.url = example.url.replace(placeholder, value)
    example.data = [
        item.replace('"password": "..."', json.dumps({"password": PASSWORD})[1:-1])
        for item in example.data
    ]
    return example


def send(proxy: str, example: Example, templates, files_dir: Path) -> requests.Response:
    method, path, query = example.method, example.path, example.query
    if method.lower() not in OPENAPI_METHODS:
        alternative = _ALTERNATIVE.search(example.command)
        assert alternative, f"README line {example.line}: {method} has no OpenAPI form"
        method = alternative[1]
        path, _, query = alternative[2].partition("?")
    url = proxy + as_templated(path, templates) + (f"?{query}" if query else "")
    body: bytes | str | None = example.body
    files = None
    if example.upload:
        body = (files_dir / example.upload).read_bytes()
    if example.form:
        # As curl sends them: a file part with its type guessed from its name.
        files = {
            name: (
                value[1:],
                (files_dir / value[1:]).read_bytes(),
                mimetypes.guess_type(value[1:])[0] or "application/octet-stream",
            )
            if value.startswith("@")
            else (None, value)
            for name, value in example.form
        }
    return requests.request(
        method, url, headers=example.headers, data=body, files=files, timeout=60
    )


def test_every_readme_example_passes_prisms_validating_proxy(ferry, prism, tmp_path):
    workspace = Workspace(ferry, tmp_path)
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4\n" + b"0" * 2000)
    with RemoteServer() as remote:
        # Slow enough to be running when the README looks at it, pauses and resumes it.
        url = remote.trickle("/data.bin", pieces=400, piece=b"d" * 1024, pause=0.05)
        download_id = workspace.start_download(url.replace("127.0.0.1", "localhost"))
        readme = (ROOT / "README.md").read_text()
        variables = {"TOKEN": workspace.token, "USER_ID": workspace.user_id}
        templates = spec_paths()
        replayed, violations = [], []
        for example in examples(readme, variables):
            if example.streams:
                continue
            try:
                answer = send(prism, filled(example, workspace, download_id), templates, tmp_path)
            except requests.ConnectionError as failure:
                violations.append((example.line, example.command, None, str(failure)))
                continue
            replayed.append((example.method, example.path, answer.status_code))
            if "sl-violations" in answer.headers:
                violations.append(
                    (
                        example.line,
                        example.command,
                        answer.status_code,
                        answer.headers["sl-violations"],
                    )
                )
        # Prism is listening and judging: a path the spec lacks is reported.
        outside = requests.get(f"{prism}/api/v1/no-such-method", headers=workspace.headers)
        assert "sl-violations" in outside.headers
    assert violations == [], "\n".join(
        f"README line {line} ({status}): {command}\n    {found}"
        for line, command, status, found in violations
    )
    assert len(replayed) >= 40, replayed
    # The examples did what they show, not only something the spec allows.
    assert ("PUT", "/reports/2024/report.pdf", 201) in replayed, replayed
    assert ("PUT", "/reports/2024/report.pdf", 200) in replayed, replayed
    assert ("GET", "/music/2024/song.mp3", 206) in replayed, replayed
    assert ("POST", "/api/v1/users.create", 200) in replayed, replayed
    assert not any(status >= 500 for _, _, status in replayed), replayed
