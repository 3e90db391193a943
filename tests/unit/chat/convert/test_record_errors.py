"""Records that cannot be converted: counted, marked with Rocket.Chat's codes."""

from __future__ import annotations

from tests.support.staged_import import T0


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
