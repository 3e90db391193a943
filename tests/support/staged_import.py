"""A small staged export and the stores a conversion run writes to, for the converter tests."""

from __future__ import annotations

from ferry.chat.convert.run import run_import
from ferry.chat.convert.state import Selection
from storage.staging import StagingArea
from storage.store import Store
from storage.users import UserRepository
from storage.workspace import WorkspaceStore

T0 = 1_700_000_000.0
ADMIN = {
    "_id": "admin1",
    "username": "boss",
    "name": "Boss",
    "emails": [{"address": "Boss@Example.com", "verified": True}],
    "roles": ["admin"],
    "active": True,
    "type": "user",
    "createdAt": "2020-01-01T00:00:00.000Z",
    "_updatedAt": "2020-01-01T00:00:00.000Z",
    "importIds": [],
    "password": "x",
}


class World:
    def __init__(self, tmp_path):
        self.store = Store(tmp_path, fsync=False)
        self.staging = StagingArea(self.store)
        self.users = UserRepository(self.store)
        self.workspace = WorkspaceStore(self.store)
        self.users.insert(dict(ADMIN))

    def run(self, op="op", selection=None, **kwargs):
        return run_import(
            op,
            staging=self.staging,
            users=self.users,
            workspace=self.workspace,
            selection=selection or Selection.everything(),
            importing_user_id="admin1",
            **kwargs,
        )

    def history(self, name, **kwargs):
        room = self.workspace.room_by_name(name)
        return self.workspace.history(room["_id"], count=100, **kwargs)[0]


def stage_slack_like(staging, op="op"):
    """Four users (one deleted, one who is the admin by email, one bot), a channel, an
    archived private group, a direct message and six messages; returns the operation id."""
    with staging.writer(op) as sink:
        sink.add_user(
            {
                "importIds": ["U1"],
                "username": "ann",
                "name": "Ann",
                "emails": ["ann@example.com"],
                "type": "user",
                "deleted": False,
                "avatarUrl": "https://img.example/ann.png",
            }
        )
        sink.add_user(
            {"importIds": ["U2"], "username": "ben", "emails": [], "type": "user", "deleted": True}
        )
        sink.add_user(
            {
                "importIds": ["U3"],
                "username": "BOSS",
                "emails": ["boss@example.com"],
                "type": "user",
                "roles": ["user"],
            }
        )
        sink.add_user(
            {
                "importIds": ["U4"],
                "name": "Cy Bot",
                "emails": ["cy@example.com"],
                "type": "bot",
                "roles": ["bot"],
            }
        )
        sink.add_channel(
            {
                "importIds": ["C1"],
                "name": "general",
                "t": "c",
                "users": ["U1", "U2"],
                "u": {"_id": "U1"},
                "topic": "hello",
                "description": "all of us",
                "ts": T0 - 100,
                "archived": False,
            }
        )
        sink.add_channel(
            {
                "importIds": ["G1"],
                "name": "secret",
                "t": "p",
                "users": ["U1"],
                "u": {"_id": "nobody"},
                "archived": True,
            }
        )
        sink.add_channel({"importIds": ["D1"], "t": "d", "users": ["U1", "U2"]})
        sink.add_message(
            {
                "_id": "slack-C1-1",
                "rid": "C1",
                "u": {"_id": "U1"},
                "msg": "hi @U2 and @all, see #C1 or mail a@b.c",
                "ts": T0 + 0.000002,
                "mentions": ["U2", "all"],
                "channels": ["general"],
                "reactions": {":+1:": {"name": ":+1:", "users": ["U2", "U1"]}},
                "replies": ["U2"],
                "tcount": 1,
                "tlm": T0 + 5,
            }
        )
        sink.add_message(
            {
                "_id": "slack-C1-2",
                "rid": "C1",
                "u": {"_id": "U2"},
                "msg": "reply",
                "ts": T0 + 5,
                "tmid": "slack-C1-1",
                "editedAt": T0 + 6,
                "editedBy": "U2",
            }
        )
        sink.add_message(
            {
                "_id": "slack-C1-3",
                "rid": "C1",
                "u": {"_id": "U2"},
                "msg": "first",
                "ts": T0 + 0.000001,
            }
        )
        sink.add_message(
            {
                "_id": "slack-C1-3-file1",
                "rid": "C1",
                "u": {"_id": "U2"},
                "msg": "",
                "ts": T0 + 0.000001,
                "_importFile": {
                    "downloadUrl": "https://files.example/f",
                    "id": "F1",
                    "size": 3,
                    "name": "f.txt",
                    "external": False,
                    "source": "slack",
                },
            }
        )
        sink.add_message(
            {"_id": "slack-G1-1", "rid": "G1", "u": {"_id": "U1"}, "msg": "psst", "ts": T0}
        )
        sink.add_message(
            {"_id": "slack-D1-1", "rid": "D1", "u": {"_id": "U2"}, "msg": "dm", "ts": T0}
        )
    return op
