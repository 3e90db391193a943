"""Imported rooms matched to the ones already on the server."""

from __future__ import annotations

from tests.support.staged_import import T0, stage_slack_like


def test_dm_with_the_same_members_is_reused_across_exports(world):
    stage_slack_like(world.staging)
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


def _stage_general(staging, op, import_id, name, text):
    with staging.writer(op) as sink:
        sink.add_user({"importIds": ["U1"], "username": "ann", "emails": ["ann@example.test"]})
        sink.add_channel(
            {
                "_id": "general",
                "importIds": [import_id],
                "name": name,
                "t": "c",
                "users": ["U1"],
                "u": {"_id": "U1"},
            }
        )
        sink.add_message(
            {"_id": f"{op}-1", "rid": import_id, "u": {"_id": "U1"}, "msg": text, "ts": T0}
        )


def test_the_general_channel_of_every_export_is_the_room_general(world):
    _stage_general(world.staging, "op", "C1", "general", "first export")
    world.run()
    _stage_general(world.staging, "op2", "C9", "all-hands", "second export")

    world.run("op2")

    room = world.workspace.room("GENERAL")
    assert room["name"] == "general" and room["default"] is True
    assert world.workspace.room_by_name("general")["_id"] == "GENERAL"
    assert set(room["importIds"]) == {"C1", "C9"}
    assert [m["msg"] for m in world.history("general")] == ["second export", "first export"]
    assert world.workspace.room_by_name("all-hands") is None
