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
