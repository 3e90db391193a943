"""CSV messages by a server user who is not in users.csv attach to that user, as Rocket.Chat
attaches them, and the counts of the operation account for every message."""

from __future__ import annotations

from tests.api.test_import_api import (
    FIXTURES,
    import_everything,
    prepared,
    upload,
)
from tests.support.importers import build_zip


def export(tmp_path, extra_messages: str, direct: str):
    return build_zip(
        tmp_path / "export.zip",
        {
            "users.csv": (FIXTURES / "csv_import_users.csv").read_text(),
            "channels.csv": (FIXTURES / "csv_import_rooms.csv").read_text(),
            "imported-csv-channel/messages.csv": (
                'billy.bob,1600000000000,"hello, room"\n' + extra_messages
            ),
            "directmessages/messages1.csv": (FIXTURES / "dm_messages.csv").read_text() + direct,
        },
    )


def history(client, caller, endpoint: str, room_id: str) -> list[dict]:
    answer = client.get(f"/api/v1/{endpoint}?roomId={room_id}&count=100", headers=caller.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["messages"]


def test_a_message_by_an_existing_user_not_in_users_csv_is_theirs(importing, tmp_path):
    app, client, admin, _ = importing
    path = export(
        tmp_path,
        'admin,1600000001000,"from the server admin"\n',
        '"admin","billy.joe","1600000002000","a direct word"\n',
    )
    upload(client, admin, path)
    selection = prepared(client, admin)
    assert selection["message_count"] == 5
    done = import_everything(client, admin)

    report = done["operation"]["report"]
    assert (report["messages_imported"], report["errors"]) == (5, 0)
    channel = client.get(
        "/api/v1/channels.info?roomName=imported-csv-channel", headers=admin.headers
    ).json()["channel"]
    messages = history(client, admin, "channels.history", channel["_id"])
    by_admin = [m for m in messages if m["msg"] == "from the server admin"]
    assert [m["u"]["_id"] for m in by_admin] == [admin.user_id]
    assert by_admin[0]["u"]["username"] == "admin"
    ims = client.get("/api/v1/im.list", headers=admin.headers).json()["ims"]
    assert [sorted(im["usernames"]) for im in ims] == [["admin", "billy.joe"]]
    direct = history(client, admin, "im.history", ims[0]["_id"])
    assert [m["msg"] for m in direct] == ["a direct word"]
    # Nothing about the admin's account changed but the id that attaches the messages.
    me = client.get("/api/v1/me", headers=admin.headers).json()
    assert me["username"] == "admin" and me["roles"] == ["admin"]


def test_a_message_by_nobody_known_is_reported_not_silently_lost(importing, tmp_path):
    app, client, admin, _ = importing
    upload(client, admin, export(tmp_path, 'ghost,1600000001000,"who am I"\n', ""))
    selection = prepared(client, admin)
    assert selection["message_count"] == 4
    assert app.services.imports.current_operation()["warnings"] == [
        "1 username(s) used in channels or messages are neither in users.csv nor existing "
        "users; their messages and memberships will fail to import: ghost"
    ]
    done = import_everything(client, admin)
    report = done["operation"]["report"]
    assert (report["messages_imported"], report["errors"]) == (3, 1)
    assert report["error_samples"] == [
        {"type": "message", "index": 3, "error": "importer-message-unknown-user"}
    ]
