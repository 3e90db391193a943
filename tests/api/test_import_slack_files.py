"""A Slack export's files as Rocket.Chat shows them: a message in the room's history that
carries the file's attachment once downloadPendingFiles has fetched it, and the general
channel as the room `GENERAL`."""

from __future__ import annotations

from tests.api.test_import_api import prepared, state_is, upload, wait_for
from tests.conftest import log_in
from tests.support.images import jpeg_header, png
from tests.support.importers import build_zip
from tests.support.remote import RemoteServer

EVERYTHING = {"input": {"users": {"all": True}, "channels": {"all": True}}}
PASSWORD = "a-long-slack-passphrase-1"


FILES = {
    "chart.png": png(7, 3),
    "photo.jpg": jpeg_header(640, 480),
    "notes.txt": b"plain words",
}


def slack_export(tmp_path, remote):
    def slack_file(position: int, name: str) -> dict:
        url = remote.file(f"/files/{name}", FILES[name])
        return {"id": f"F{position}", "name": name, "size": len(FILES[name]),
                "url_private_download": url}  # fmt: skip

    messages = [
        {"type": "message", "user": "U1", "text": "see these", "ts": "1500000001.000100",
         "files": [slack_file(1, "chart.png"), slack_file(2, "photo.jpg")]},
        {"type": "message", "subtype": "file_share", "user": "U1", "text": "",
         "ts": "1500000002.000100", "file": slack_file(3, "notes.txt")},
    ]  # fmt: skip
    return build_zip(
        tmp_path / "slack.zip",
        {
            "users.json": [{"id": "U1", "name": "ann", "profile": {"email": "ann@example.test"}}],
            "channels.json": [
                {
                    "id": "C1",
                    "name": "general",
                    "creator": "U1",
                    "members": ["U1"],
                    "is_general": True,
                    "created": 1,
                }
            ],  # fmt: skip
            "general/2017-07-14.json": messages,
        },
    )


def history(client, caller) -> list[dict]:
    answer = client.get("/api/v1/channels.history?roomName=general", headers=caller.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["messages"]


def test_slack_files_are_messages_that_carry_their_attachment(importing, tmp_path):
    app, client, admin, _ = importing
    with RemoteServer() as remote:
        upload(client, admin, slack_export(tmp_path, remote), importer_key="slack")
        prepared(client, admin)
        client.post("/api/v1/startImport", headers=admin.headers, json=EVERYTHING)
        assert wait_for(client, admin, state_is("done", "error"))["state"] == "done"
        app.services.accounts.set_password("ann", PASSWORD)
        ann = log_in(client, "ann", PASSWORD)

        before = history(client, ann)
        # The text and one message per file, the files not fetched yet.
        assert [m["msg"] for m in before] == ["", "", "", "see these"]
        assert not any(m.get("attachments") for m in before)

        fetched = client.post("/api/v1/downloadPendingFiles", headers=admin.headers, json={})
        assert fetched.json() == {"count": 3, "success": True}
        wait_for(client, admin, state_is("done"))

    info = client.get("/api/v1/channels.info?roomName=general", headers=ann.headers).json()
    assert info["channel"]["_id"] == "GENERAL"
    shown = {
        m["attachments"][0]["title"]: m["attachments"][0]
        for m in history(client, ann)
        if m["msg"] == ""
    }
    assert set(shown) == set(FILES)
    chart, photo, notes = shown["chart.png"], shown["photo.jpg"], shown["notes.txt"]
    assert chart == {
        "type": "file",
        "title": "chart.png",
        "title_link": chart["title_link"],
        "image_url": chart["title_link"],
        "image_type": "image/png",
        "image_size": len(FILES["chart.png"]),
        "image_dimensions": {"width": 7, "height": 3},
    }
    assert photo["image_type"] == "image/jpeg"
    assert photo["image_dimensions"] == {"width": 640, "height": 480}
    assert notes == {"type": "file", "title": "notes.txt", "title_link": notes["title_link"]}
    for name, attachment in shown.items():
        link = attachment["title_link"]
        assert link.startswith("/file-upload/") and link.endswith(f"/{name}")
        assert client.get(link, headers=ann.headers).content == FILES[name]
        assert client.get(link).status_code in (401, 403, 404)
