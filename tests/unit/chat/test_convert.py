"""Staging to workspace: what an admin sees after startImport."""

from __future__ import annotations

import pytest

from ferry.chat.convert import ImportCancelled, Selection, run_import
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


@pytest.fixture
def world(tmp_path):
    world = World(tmp_path)
    yield world
    world.store.close()


def _slack_like(staging, op="op"):
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
                "_hidden": True,
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


def test_full_import_creates_users_rooms_and_messages(world):
    _slack_like(world.staging)

    report = world.run()

    assert (report.users_created, report.users_updated) == (3, 1)
    assert (report.rooms_created, report.messages_imported, report.errors) == (3, 6, 0)
    ann = world.users.by_username("ann")
    assert ann["active"] and "password" not in ann and ann["importIds"] == ["U1"]
    assert ann["_pendingAvatarUrl"] == "https://img.example/ann.png"
    assert world.users.by_username("ben")["active"] is False
    bot = world.users.by_email("cy@example.com")
    assert (bot["username"], bot["type"], bot["roles"]) == ("cy.bot", "bot", ["bot"])

    general = world.workspace.room_by_name("general")
    assert (general["t"], general["topic"], general["description"]) == ("c", "hello", "all of us")
    assert general["u"]["username"] == "ann" and general["usersCount"] == 2
    assert general["msgs"] == 3 and general["lastMessage"]["_id"] == "slack-C1-1"
    secret = world.workspace.room_by_name("secret")
    assert secret["archived"] and secret["u"]["username"] == "boss"  # creator fallback
    dm = world.workspace.direct_room_by_members([ann["_id"], world.users.by_username("ben")["_id"]])
    assert dm["usernames"] == ["ann", "ben"] and dm["_id"] == "".join(sorted(dm["uids"]))


def test_messages_carry_resolved_users_mentions_threads_and_files(world):
    _slack_like(world.staging)
    world.run()
    ben = world.users.by_username("ben")
    general = world.workspace.room_by_name("general")

    messages = {m["_id"]: m for m in world.workspace.messages(general["_id"])}
    parent = messages["slack-C1-1"]
    assert parent["msg"] == "hi @ben and @all, see #general or mail a@b.c"
    assert {"_id": ben["_id"], "username": "ben", "name": "ben", "type": "user"} in parent[
        "mentions"
    ]
    assert {m["_id"] for m in parent["mentions"]} == {ben["_id"], "all"}
    assert parent["channels"] == [{"_id": general["_id"], "name": "general"}]
    assert parent["reactions"] == {":+1:": {"usernames": ["ben", "ann"]}}
    assert (parent["replies"], parent["tcount"]) == ([ben["_id"]], 1)
    assert parent["tlm"] == "2023-11-14T22:13:25.000Z"
    assert parent["u"] == {
        "_id": world.users.by_username("ann")["_id"],
        "username": "ann",
        "name": "Ann",
    }
    reply = messages["slack-C1-2"]
    assert reply["tmid"] == "slack-C1-1"
    assert reply["editedBy"] == {"_id": ben["_id"], "username": "ben"}
    assert messages["slack-C1-3-file1"]["_importFile"]["id"] == "F1"
    assert world.workspace.pending_file_count() == 1


def test_microsecond_order_within_one_second_is_kept(world):
    _slack_like(world.staging)
    world.run()

    newest_first = [m["_id"] for m in world.history("general")]

    # Both share the ISO second and millisecond; only the microseconds order them.
    assert newest_first == ["slack-C1-2", "slack-C1-1", "slack-C1-3"]
    assert {m["ts"] for m in world.history("general")[1:]} == {"2023-11-14T22:13:20.000Z"}


def test_importing_the_same_staging_twice_creates_nothing_new(world):
    _slack_like(world.staging)
    world.run()
    counts = (
        world.users.count(),
        world.workspace.room_count(),
        world.workspace.message_count(world.workspace.room_by_name("general")["_id"]),
    )

    again = world.run()

    assert (again.users_created, again.rooms_created) == (0, 0)
    assert (
        world.users.count(),
        world.workspace.room_count(),
        world.workspace.message_count(world.workspace.room_by_name("general")["_id"]),
    ) == counts


def test_an_existing_admin_matched_by_email_keeps_admin(world):
    _slack_like(world.staging)
    world.run()
    boss = world.users.get("admin1")
    assert "admin" in boss["roles"] and "user" in boss["roles"]
    assert boss["active"] and boss["password"] == "x" and boss["importIds"] == ["U3"]


def test_existing_user_matched_by_username_case_insensitively(world):
    world.users.insert(
        {
            **ADMIN,
            "_id": "local2",
            "username": "Dora",
            "roles": ["user"],
            "emails": [],
            "importIds": [],
        }
    )
    with world.staging.writer("op") as sink:
        sink.add_user(
            {
                "importIds": ["U9"],
                "username": "dora",
                "emails": ["dora@new.example"],
                "type": "user",
            }
        )

    report = world.run()

    assert (report.users_created, report.users_updated) == (0, 1)
    dora = world.users.get("local2")
    assert dora["importIds"] == ["U9"]
    assert [e["address"] for e in dora["emails"]] == ["dora@new.example"]


def test_selection_is_honoured_and_messages_of_left_out_rooms_are_skipped(world):
    _slack_like(world.staging)
    selection = Selection.from_input(
        {"users": {"list": ["U1", "U2"]}, "channels": {"all": False, "list": ["C1"]}}
    )

    report = world.run(selection=selection)

    assert world.users.by_email("cy@example.com") is None
    assert (report.users_created, report.users_skipped) == (2, 2)
    assert world.workspace.room_by_name("secret") is None
    assert (report.rooms_created, report.rooms_skipped) == (1, 2)
    assert (report.messages_imported, report.messages_skipped, report.errors) == (4, 2, 0)


def test_direct_messages_entry_selects_every_dm(world):
    _slack_like(world.staging)
    report = world.run(
        selection=Selection.from_input(
            {"users": {"all": True}, "channels": {"list": ["__directMessages__"]}}
        )
    )
    assert (report.rooms_created, report.messages_imported) == (1, 1)
    assert world.workspace.rooms("d")[1] == 1


def test_dm_with_the_same_members_is_reused_across_exports(world):
    _slack_like(world.staging)
    world.run()
    with world.staging.writer("op2") as sink:
        sink.add_channel({"importIds": ["OTHER-DM"], "t": "d", "users": ["U2", "U1"]})
        sink.add_message(
            {"_id": "x-1", "rid": "OTHER-DM", "u": {"_id": "U1"}, "msg": "again", "ts": T0 + 1}
        )

    report = world.run("op2")

    assert (report.rooms_created, report.rooms_updated) == (0, 1)
    dm = world.workspace.rooms("d")[0][0]
    assert set(dm["importIds"]) == {"D1", "OTHER-DM"}
    assert world.workspace.message_count(dm["_id"]) == 2


def test_bad_records_are_counted_and_marked_not_fatal(world):
    with world.staging.writer("op") as sink:
        sink.add_user({"importIds": ["U1"], "emails": [], "type": "user"})
        sink.add_user({"importIds": ["U2"], "username": "ok", "emails": [], "type": "user"})
        sink.add_channel({"importIds": ["C1"], "name": " ", "t": "c"})
        sink.add_channel({"importIds": ["C2"], "name": "fine", "t": "c"})
        sink.add_message({"_id": "a", "rid": "C9", "u": {"_id": "U2"}, "msg": "x", "ts": T0})
        sink.add_message({"_id": "b", "rid": "C2", "u": {"_id": "U7"}, "msg": "x", "ts": T0})
        sink.add_message({"_id": "c", "rid": "C2", "u": {"_id": "U2"}, "msg": "x", "ts": "?"})
        sink.add_message(
            {
                "_id": "d",
                "rid": "C2",
                "u": {"_id": "U2"},
                "msg": "@U7",
                "ts": T0,
                "mentions": ["U7"],
            }
        )

    report = world.run()

    assert (report.errors, report.messages_imported, report.warnings) == (5, 1, 1)
    assert [(e["kind"], e["seq"], e["error"]) for e in world.staging.errors("op")] == [
        ("user", 0, "importer-user-missing-email-and-username"),
        ("channel", 0, "importer-channel-missing-name"),
        ("message", 0, "importer-message-unknown-room"),
        ("message", 1, "importer-message-unknown-user"),
        ("message", 2, "importer-message-invalid-timestamp"),
    ]


def test_progress_reports_rocket_chat_steps(world):
    _slack_like(world.staging)
    seen = []
    world.run(progress=lambda *args: seen.append(args))

    steps = list(dict.fromkeys(step for step, *_ in seen))
    assert steps == [
        "importer_importing_users",
        "importer_importing_channels",
        "importer_importing_messages",
        "importer_finishing",
    ]
    assert seen[-1] == ("importer_finishing", 13, 13, 0)


def test_cancel_stops_cleanly_and_a_later_run_completes(world, monkeypatch):
    monkeypatch.setattr("ferry.chat.convert.BATCH", 2)
    _slack_like(world.staging)
    answers = iter([True, True, True, True, False])

    with pytest.raises(ImportCancelled):
        world.run(should_continue=lambda: next(answers))
    general = world.workspace.room_by_name("general")
    stored = world.workspace.message_count(general["_id"], visible_only=False)
    assert 0 < stored < 4
    assert world.workspace.room(general["_id"])["msgs"] == world.workspace.message_count(
        general["_id"]
    )

    world.run()
    assert world.workspace.message_count(general["_id"], visible_only=False) == 4


def test_a_malformed_record_is_marked_and_the_rest_imports(world):
    with world.staging.writer("op") as sink:
        sink.add_user({"importIds": ["U1"], "username": "ok", "emails": [42], "type": "user"})
        sink.add_channel({"importIds": ["C1"], "name": "fine", "t": "c"})
        sink.add_message({"_id": "a", "rid": "C1", "u": "U1", "msg": "x", "ts": T0})
        sink.add_message({"_id": "b", "rid": "C1", "u": {"_id": "U1"}, "msg": "x", "ts": T0})

    report = world.run()

    assert (report.errors, report.messages_imported) == (1, 1)
    assert next(world.staging.errors("op"))["error"].startswith("importer-invalid-record")


def test_rocket_chat_6_selection_arrays_are_understood():
    selection = Selection.from_input(
        {
            "users": [{"user_id": "U1", "do_import": True}, {"user_id": "U2", "do_import": False}],
            "channels": [{"channel_id": "__directMessages__", "do_import": True}],
        }
    )
    assert selection.wants_user(["U1"]) and not selection.wants_user(["U2"])
    assert selection.wants_channel("d", ["D1"]) and not selection.wants_channel("c", ["C1"])
