"""SSRF battery through the import API: downloadPublicImportFile and pending files.

Private networks are not allowed. `front` plays a public server (FakeInternet dials it
for PUBLIC_IP only and refuses every other address without traffic); `internal` plays
the internal service every hostile URL points at. Each case must be refused with a
reason on the operation, the download record or the pending-files operation, and
`internal` must never see a connection.
"""

from __future__ import annotations

import pytest

from ferry.downloads import urllib3_vetted
from handlers.app import create_app
from tests.api.test_import_api import prepared, state_is, upload, wait_for
from tests.conftest import ADMIN_PASSWORD, log_in, make_config
from tests.support.downloads import (
    LOOPBACK_AND_PRIVATE_LITERALS,
    PUBLIC_IP,
    FakeInternet,
    StubResolver,
)
from tests.support.envelope import assert_error
from tests.support.importers import build_zip
from tests.support.remote import RemoteServer

INTERNAL_ANSWERS = [
    "127.0.0.1",
    "127.255.255.254",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:a9fe:a9fe",
    "0.0.0.0",
    "10.1.2.3",
    "172.31.255.255",
    "192.168.0.1",
    "169.254.169.254",
    "fe80::1",
    "fd00:ec2::254",
    "100.100.100.200",
    "100.64.0.1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::1",
]

# Where `front` redirects to; {port} is the internal server's.
REDIRECT_TARGETS = [
    "http://127.0.0.1:{port}/secret",
    "http://127.1:{port}/secret",
    "http://2130706433:{port}/secret",
    "http://0x7f000001:{port}/secret",
    "http://0177.0.0.1:{port}/secret",
    "http://[::1]:{port}/secret",
    "http://[::ffff:127.0.0.1]:{port}/secret",
    "http://[::ffff:7f00:1]:{port}/secret",
    "http://localhost:{port}/secret",
    "http://10.0.0.1/secret",
    "http://192.168.1.1/secret",
    "http://172.16.0.1/secret",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://metadata.test/computeMetadata/v1/",
    "http://inside.test:{port}/secret",
    "//inside.test:{port}/secret",
    "https://127.0.0.1:{port}/secret",
]


class Battery:
    """One app and both servers for a whole module; each case gets its own host names."""

    def __init__(self, tmp_path_factory):
        self.internal = RemoteServer().start()
        self.front = RemoteServer().start()
        self.answers: dict = {
            "files.example": [PUBLIC_IP],
            "inside.test": ["127.0.0.1"],
            "metadata.test": ["169.254.169.254"],
        }
        self.resolver = StubResolver(self.answers)
        self.internet = FakeInternet(self.front)
        self.patch = pytest.MonkeyPatch()
        self.patch.setattr(urllib3_vetted, "_open_socket", self.internet)
        root = tmp_path_factory.mktemp("ssrf")
        self.app = create_app(
            make_config(root / "data", fetch_policy_overrides={"resolver": self.resolver})
        )
        self.app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
        self.client = self.app.test_client().__enter__()
        self.admin = log_in(self.client, "admin", ADMIN_PASSWORD)
        self.counter = 0

    def name(self, answers) -> str:
        """A fresh host name with its own DNS answers (list, or list of lists per lookup)."""
        self.counter += 1
        host = f"case{self.counter}.test"
        self.answers[host] = answers
        return host

    def redirect(self, location: str) -> str:
        self.counter += 1
        path = f"/hop{self.counter}"
        self.front.redirect(path, location.format(port=self.internal.port))
        return f"http://files.example:{self.front.port}{path}"

    def close(self):
        self.client.__exit__(None, None, None)
        self.app.services.close()
        self.patch.undo()
        self.front.stop()
        self.internal.stop()


@pytest.fixture
def batteries(tmp_path_factory):
    """batteries() -> a new Battery; each is checked untouched and closed at the end."""
    made: list[Battery] = []

    def make() -> Battery:
        made.append(Battery(tmp_path_factory))
        return made[-1]

    yield make
    # Newest first: each one's monkeypatch undo restores what the one before it saw.
    for battery in reversed(made):
        battery.close()
        assert battery.internal.untouched
        assert set(battery.internet.attempts) <= {PUBLIC_IP}


def hostile_urls(battery: Battery) -> list[tuple[str, str]]:
    """(case, URL) for every way of pointing at something internal."""
    port = battery.internal.port
    cases = [
        (f"literal {h}", f"http://{h}:{port}/export.zip") for h in LOOPBACK_AND_PRIVATE_LITERALS
    ]
    cases += [
        ("metadata https", "https://169.254.169.254/latest/meta-data/"),
        ("localhost", f"http://localhost:{port}/export.zip"),
        ("localhost subdomain", f"http://a.localhost:{port}/export.zip"),
        ("userinfo trick", f"http://files.example@127.0.0.1:{port}/export.zip"),
    ]
    for answer in INTERNAL_ANSWERS:
        cases.append((f"name -> {answer}", f"http://{battery.name([answer])}:{port}/x.zip"))
    mixed = battery.name([PUBLIC_IP, "127.0.0.1"])
    cases.append(("name -> public and loopback", f"http://{mixed}:{port}/x.zip"))
    for location in REDIRECT_TARGETS:
        cases.append((f"redirect -> {location}", battery.redirect(location)))
    # DNS answers that change between lookups: public for the first hops, then internal.
    for public_hops, inside in ((1, "127.0.0.1"), (1, "169.254.169.254"), (2, "10.0.0.1")):
        host = battery.name([[PUBLIC_IP]] * public_hops + [[inside]])
        hops = [f"/again{battery.counter}-{hop}" for hop in range(public_hops)]
        targets = [f"http://{host}:{battery.front.port}{path}" for path in hops[1:]]
        for path, location in zip(hops, [*targets, f"http://{host}:{port}/secret"], strict=True):
            battery.front.redirect(path, location)
        url = f"http://{host}:{battery.front.port}{hops[0]}"
        cases.append((f"rebinding to {inside} after {public_hops} hops", url))
    return cases


def test_download_public_import_file_refuses_every_internal_target(batteries):
    battery = batteries()
    cases = hostile_urls(battery)
    client, admin = battery.client, battery.admin
    failures = []
    for case, url in cases:
        before = {d["id"] for d in battery.app.services.downloads.history()}
        response = client.post(
            "/api/v1/downloadPublicImportFile",
            headers=admin.headers,
            json={"fileUrl": url, "importerKey": "csv"},
        )
        body = assert_error(response, 400)
        refusals = ("error-ssrf-validation-failed", "URLs with a user name or password")
        if not body["error"].startswith(refusals):
            failures.append((case, body))
            continue
        # Refused after the start: the operation and the download record say why.
        new = [d for d in battery.app.services.downloads.history() if d["id"] not in before]
        if new:
            operation = battery.app.services.imports.current_operation()
            if not (
                operation["status"] == "importer_import_failed"
                and operation["error"]
                and new[0]["error"] == "DOMAIN_BLOCKED"
                and new[0]["message"]
            ):
                failures.append((case, operation, new))
    print(f"downloadPublicImportFile SSRF battery: {len(cases)} cases, {len(failures)} failed")
    assert len(cases) >= 80
    assert failures == [], failures


def slack_export(path, urls: list[str]):
    users = [{"id": "U1", "name": "ann", "profile": {"email": "ann@example.test"}}]
    channels = [{"id": "C1", "name": "general", "creator": "U1", "members": ["U1"]}]
    messages = [
        {
            "type": "message",
            "user": "U1",
            "text": f"file {number}",
            "ts": f"{1500000000 + number}.000100",
            "files": [{"id": f"F{number}", "name": "x.txt", "url_private_download": url}],
        }
        for number, url in enumerate(urls)
    ]
    return build_zip(
        path, {"users.json": users, "channels.json": channels, "general/2017-07-14.json": messages}
    )


def test_pending_files_pointing_inside_are_all_refused_with_reasons(batteries, tmp_path):
    refused = failures = 0
    # A pending-files operation keeps 50 reasons: the cases go in batches of 40, each
    # into a fresh app.
    total = len(hostile_urls(batteries()))
    for start in range(0, total, 40):
        battery = batteries()
        client, admin = battery.client, battery.admin
        batch = hostile_urls(battery)[start : start + 40]
        export = slack_export(tmp_path / f"slack{start}.zip", [url for _, url in batch])
        assert upload(client, admin, export, importer_key="slack").json() == {"success": True}
        assert prepared(client, admin)["message_count"] >= len(batch)
        client.post(
            "/api/v1/startImport",
            headers=admin.headers,
            json={"input": {"users": {"all": True}, "channels": {"all": True}}},
        )
        assert wait_for(client, admin, state_is("done", "error"))["state"] == "done"
        count = client.post("/api/v1/downloadPendingFiles", headers=admin.headers, json={})
        assert count.json()["count"] == len(batch)
        done = wait_for(client, admin, state_is("done", "error"))["operation"]
        assert done["status"] == "importer_done"
        assert done["count"]["error"] == len(batch)
        reasons = {w.split(":", 1)[0]: w for w in done.get("warnings") or []}
        for number, (case, _) in enumerate(batch):
            reason = reasons.get(f"file F{number}", "")
            if not ("DOMAIN_BLOCKED" in reason or "INVALID_URL" in reason):
                failures += 1
                print("not refused with a reason:", case, reason)
        assert not list(battery.app.services.config.files_dir.rglob("x.txt"))
        refused += len(batch)
    print(f"pending-files SSRF battery: {refused} cases, {failures} failed")
    assert refused >= 80
    assert failures == 0
