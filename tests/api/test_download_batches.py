"""POST /api/v1/downloads: many starts in one request, each answered in its place."""

from __future__ import annotations

import contextlib

import pytest

from handlers.app import create_app
from tests.conftest import ADMIN_PASSWORD, log_in, make_config
from tests.support.remote import wait_until

pytest_plugins = ("tests.support.download_fixtures",)


@pytest.fixture
def config(tmp_path):
    blocked = ("blocked.test",)
    on = {"allow_download": True, "allow_private_networks": True}
    return make_config(tmp_path / "data", download_blocked_domains=blocked, **on)


def post(client, caller, items):
    return client.post("/api/v1/downloads", json={"items": items}, headers=caller.bearer)


def test_a_thousand_items_start_in_order_and_refusals_do_not_stop_the_rest(
    app, client, admin, remote, files_dir
):
    url = remote.generated("/f.bin", 64)
    items = []
    for i in range(1000):
        if i % 97 == 5:
            items.append({"url": f"ftp://example.test/{i}.bin", "directory": "batch"})
        elif i % 101 == 7:
            items.append({"url": f"https://blocked.test/{i}.bin", "directory": "batch"})
        elif i % 199 == 3:
            items.append({"url": url, "directory": ".hidden"})
        else:
            items.append({"url": url, "directory": "batch", "filename": f"{i}.bin"})
    response = post(client, admin, items)
    assert response.status_code == 200, response.text
    answers = response.json()["downloads"]
    assert response.json()["success"] is True
    assert len(answers) == 1000
    codes = {}
    for i, answer in enumerate(answers):
        codes[answer["error"]] = codes.get(answer["error"], 0) + 1
        if i % 97 == 5:
            assert answer["error"] == "INVALID_URL" and answer["download_id"] is None
        elif i % 101 == 7:
            assert answer["error"] == "DOMAIN_BLOCKED" and answer["path"] == f"batch/{i}.bin"
        elif i % 199 == 3:
            assert answer["error"] == "INVALID_DIRECTORY" and answer["success"] is False
        else:
            assert answer["success"] is True and answer["error"] is None
            assert answer["path"] == f"batch/{i}.bin"
    assert codes[None] > 950 and len(codes) == 4
    last = answers[-1]["download_id"]

    def last_record() -> dict:
        return client.get(f"/api/v1/downloads/{last}", headers=admin.bearer).json()["download"]

    assert wait_until(lambda: last_record()["status"] == "completed", timeout=120)
    assert (files_dir / "batch" / "999.bin").exists()
    assert not (files_dir / ".hidden").exists()


@pytest.fixture
def one_slot(tmp_path):
    """An app with downloads on and one transfer slot; `with one_slot(**more) as
    (client, admin)`."""
    apps = []

    @contextlib.contextmanager
    def opened(**options):
        app = create_app(
            make_config(
                tmp_path / "data",
                allow_download=True,
                allow_private_networks=True,
                max_concurrent_downloads=1,
                **options,
            )
        )
        apps.append(app)
        app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
        with app.test_client() as client:
            yield client, log_in(client, "admin", ADMIN_PASSWORD)

    yield opened
    for app in apps:
        app.services.close()


def test_items_past_the_queue_are_refused_and_the_first_ones_run(one_slot, remote):
    with one_slot(max_queued_downloads=1) as (client, admin):
        items = [{"url": remote.endless(f"/{i}"), "directory": "q"} for i in range(4)]
        answers = post(client, admin, items).json()["downloads"]
        assert [a["error"] for a in answers] == [
            None,
            None,
            "DOWNLOAD_QUEUE_FULL",
            "DOWNLOAD_QUEUE_FULL",
        ]


def test_every_started_item_is_on_disk_when_the_batch_is_answered(one_slot, tmp_path, remote):
    with one_slot() as (client, admin):
        # One runs, the others wait for its slot: only the batch's own flush writes them.
        items = [{"url": remote.endless(f"/{i}"), "directory": "q"} for i in range(5)]
        answers = post(client, admin, items).json()["downloads"]
        ids = [answer["download_id"] for answer in answers]
        assert all(ids)
        on_disk = b"".join(
            path.read_bytes() for path in (tmp_path / "data" / "state").rglob("*") if path.is_file()
        )
        assert [i for i in ids if i.encode() not in on_disk] == []
        listed = client.get("/api/v1/downloads", headers=admin.bearer).json()["downloads"]
        assert {entry["id"] for entry in listed} == set(ids)


def test_without_allow_download_nothing_starts(tmp_path, remote):
    app = create_app(make_config(tmp_path / "data", allow_private_networks=True))
    app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
    with app.test_client() as client:
        admin = log_in(client, "admin", ADMIN_PASSWORD)
        response = post(client, admin, [{"url": remote.generated("/a", 1), "directory": ""}])
        assert response.status_code == 403
        assert response.json()["error"] == "DOWNLOAD_FORBIDDEN"
    assert remote.untouched
    app.services.close()


def test_a_user_without_download_files_is_refused(client, make_user, remote):
    bot = make_user("robot", ["bot"])
    response = post(client, bot, [{"url": remote.generated("/a", 1), "directory": ""}])
    assert response.status_code == 403
    assert remote.untouched


@pytest.mark.parametrize(
    "body",
    [
        {"items": []},
        {"items": [{"url": "https://files.example.test/a", "directory": "d"}] * 1001},
        {"items": [{"url": "https://files.example.test/a"}]},
        {"items": [{"url": "https://files.example.test/a", "directory": "d", "timeout": 0}]},
        {"items": [{"url": "https://files.example.test/a", "directory": "d", "colour": "red"}]},
    ],
)
def test_malformed_batches_are_refused_whole(client, admin, body, files_dir):
    response = client.post("/api/v1/downloads", json=body, headers=admin.bearer)
    assert response.status_code == 400
    assert not (files_dir / "d").exists()
