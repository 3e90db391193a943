"""An imported Slack workspace with threads, and Ann, Bo and Cy logged in.

`general` (everyone): Ann asks "Who reviews the release?", Bo and Cy reply in its
thread, then Ann says hello and shares a file (not downloaded). A direct message
room holds Ann and Bo. `secret` (Ann and Bo): Ann starts a thread, Bo replies.
"""

from __future__ import annotations

import pytest

from tests.api.test_import_api import prepared, state_is, upload, wait_for
from tests.conftest import log_in
from tests.support.importers import build_zip

PASSWORD = "a-long-thread-passphrase-1"
EVERYTHING = {"input": {"users": {"all": True}, "channels": {"all": True}}}
QUESTION_TS = "1500000001.000100"
# Slack puts a token in its files' download URLs; it must never reach a reader.
EXPORT_TOKEN = "xoxe-export-token-7f3a"
EXPORT_FILE = {
    "id": "F1",
    "name": "plan.txt",
    "size": 9,
    "url_private_download": f"http://127.0.0.1:9/files/plan.txt?t={EXPORT_TOKEN}",
}
SECRET_TS = "1500000010.000100"


def _export(tmp_path):
    users = [
        {"id": f"U{i}", "name": name, "profile": {"email": f"{name}@example.test"}}
        for i, name in ((1, "ann"), (2, "bo"), (3, "cy"))
    ]

    def room(room_id, name, members):
        return {"id": room_id, "name": name, "creator": "U1", "members": members, "created": 1}

    def said(user, text, ts, **extra):
        return {"type": "message", "user": user, "text": text, "ts": ts, **extra}

    general = [
        said(
            "U1",
            "Who reviews the release?",
            QUESTION_TS,
            thread_ts=QUESTION_TS,
            reply_count=2,
            reply_users=["U2", "U3"],
            latest_reply="1500000003.000100",
        ),
        said("U2", "me", "1500000002.000100", thread_ts=QUESTION_TS, parent_user_id="U1"),
        said("U3", "me too", "1500000003.000100", thread_ts=QUESTION_TS, parent_user_id="U1"),
        said("U1", "hello all", "1500000004.000100"),
        said("U1", "", "1500000005.000100", files=[EXPORT_FILE]),
    ]
    secret = [
        said(
            "U1",
            "The plan",
            SECRET_TS,
            thread_ts=SECRET_TS,
            reply_count=1,
            reply_users=["U2"],
            latest_reply="1500000011.000100",
        ),
        said("U2", "agreed", "1500000011.000100", thread_ts=SECRET_TS, parent_user_id="U1"),
    ]
    return build_zip(
        tmp_path / "threads.zip",
        {
            "users.json": users,
            "channels.json": [room("C1", "general", ["U1", "U2", "U3"])],
            "groups.json": [room("G1", "secret", ["U1", "U2"])],
            "dms.json": [{"id": "D1", "members": ["U1", "U2"], "created": 1}],
            "D1/2017-07-14.json": [said("U2", "hi ann", "1500000020.000100")],
            "general/2017-07-14.json": general,
            "secret/2017-07-14.json": secret,
        },
    )


@pytest.fixture
def threads(importing, tmp_path):
    """`(app, client, callers)`: callers are admin, ann, bo and cy."""
    app, client, admin, _ = importing
    upload(client, admin, _export(tmp_path), importer_key="slack")
    prepared(client, admin)
    client.post("/api/v1/startImport", headers=admin.headers, json=EVERYTHING)
    assert wait_for(client, admin, state_is("done", "error"))["state"] == "done"
    callers = {"admin": admin}
    for name in ("ann", "bo", "cy"):
        app.services.accounts.set_password(name, PASSWORD)
        callers[name] = log_in(client, name, PASSWORD)
    return app, client, callers


def get(client, caller, path, **query):
    return client.get(f"/api/v1/{path}", headers=caller.headers, params=query)


def messages_by_text(client, caller) -> dict[str, dict]:
    """Every message of general and secret, thread replies included, by its text."""
    found = {}
    for endpoint, room in (("channels.history", "general"), ("groups.history", "secret")):
        answer = get(client, caller, endpoint, roomName=room, showThreadMessages="true").json()
        found.update({m["msg"]: m for m in answer["messages"]})
    return found
