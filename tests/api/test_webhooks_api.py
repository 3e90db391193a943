"""Webhooks through the app: a download that finishes is posted, signed, to the
configured receiver, and the delivery shows in the metrics."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import quote

from handlers.app import create_app
from tests.conftest import ADMIN_PASSWORD, log_in, make_config
from tests.support.remote import wait_until
from tests.unit.test_webhooks import SECRET, Receiver

pytest_plugins = ("tests.support.download_fixtures",)


def test_a_finished_download_reaches_the_webhook_signed_and_is_counted(tmp_path, remote):
    with Receiver() as receiver:
        app = create_app(
            make_config(
                tmp_path / "data",
                allow_download=True,
                allow_private_networks=True,
                webhook_urls=(receiver.url,),
                webhook_secret=SECRET,
            )
        )
        app.services.accounts.ensure_admin("admin", ADMIN_PASSWORD)
        with app.test_client() as client:
            admin = log_in(client, "admin", ADMIN_PASSWORD)
            url = quote(remote.generated("/w.bin", 1000), safe="")
            started = client.get(f"/in?download={url}", headers=admin.bearer).json()
            assert receiver.arrived.wait(20)
            headers, body = receiver.posts[0]
            expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert headers["X-Ferry-Signature"] == f"sha256={expected}"
            event = json.loads(body)
            assert event["type"] == "download.completed"
            assert event["download"]["id"] == started["download_id"]
            assert event["download"]["total_bytes"] == 1000

            def delivered() -> bool:
                metrics = client.get("/api/v1/metrics", headers=admin.bearer).text
                return 'ferry_webhook_deliveries_total{outcome="delivered"} 1.0' in metrics

            assert wait_until(delivered)
        app.services.close()
        assert len(receiver.posts) == 1
