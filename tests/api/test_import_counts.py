"""What an import reports adds up to what readers see: every message the file holds is in
a room's history, or counted as skipped or failed in the operation's report."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.test_import_api import prepared, state_is, upload, wait_for

FIXTURES = Path(__file__).parents[3] / "shared" / "fixtures"
EVERYTHING = {"input": {"users": {"all": True}, "channels": {"all": True}}}
HISTORIES = (
    ("channels.list", "channels", "channels.history"),
    ("groups.listAll", "groups", "groups.history"),
    ("im.list.everyone", "ims", "im.history"),
)


def _visible_messages(client, admin) -> int:
    seen = 0
    for listing, key, history in HISTORIES:
        rooms = client.get(f"/api/v1/{listing}?count=1000", headers=admin.headers).json()[key]
        for room in rooms:
            page = client.get(
                f"/api/v1/{history}?roomId={room['_id']}&count=1000&showThreadMessages=true",
                headers=admin.headers,
            ).json()
            assert page["total"] == len(page["messages"]), room
            seen += page["total"]
    return seen


@pytest.mark.parametrize(
    "export",
    [
        FIXTURES / "slackdump" / "source_export.zip",
        FIXTURES / "slack-export-viewer" / "testarchive.zip",
    ],
    ids=["slackdump", "slack-export-viewer"],
)
def test_every_message_of_a_shared_export_is_seen_or_accounted_for(importing, export):
    app, client, admin, _ = importing
    upload(client, admin, export, importer_key="slack")
    in_file = prepared(client, admin)["message_count"]
    client.post("/api/v1/startImport", headers=admin.headers, json=EVERYTHING)
    done = wait_for(client, admin, state_is("done", "error"))
    assert done["state"] == "done"
    report = done["operation"]["report"]
    progress = client.get("/api/v1/getImportProgress", headers=admin.headers).json()

    visible = _visible_messages(client, admin)

    assert report["messages_imported"] == visible
    assert visible + report["messages_skipped"] + report["errors"] == in_file
    assert progress["count"]["completed"] == progress["count"]["total"]
