"""Imported messages as a Rocket.Chat client reads them."""

from __future__ import annotations

from tests.support.staged_import import T0, stage_slack_like


def test_messages_carry_resolved_users_mentions_threads_and_files(world):
    stage_slack_like(world.staging)
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
    stage_slack_like(world.staging)
    world.run()

    newest_first = [m["_id"] for m in world.history("general")]

    # Both share the ISO second and millisecond; only the microseconds order them.
    assert newest_first == ["slack-C1-2", "slack-C1-1", "slack-C1-3-file1", "slack-C1-3"]
    assert {m["ts"] for m in world.history("general")[1:]} == {"2023-11-14T22:13:20.000Z"}


def test_a_malformed_record_is_marked_and_the_rest_imports(world):
    with world.staging.writer("op") as sink:
        sink.add_user({"importIds": ["U1"], "username": "ok", "emails": [42], "type": "user"})
        sink.add_channel({"importIds": ["C1"], "name": "fine", "t": "c"})
        sink.add_message({"_id": "a", "rid": "C1", "u": "U1", "msg": "x", "ts": T0})
        sink.add_message({"_id": "b", "rid": "C1", "u": {"_id": "U1"}, "msg": "x", "ts": T0})

    report = world.run()

    assert (report.errors, report.messages_imported) == (1, 1)
    assert next(world.staging.errors("op"))["error"].startswith("importer-invalid-record")
