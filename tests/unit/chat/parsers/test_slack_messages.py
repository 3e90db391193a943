"""Slack messages in the generated export: system messages, edits, threads, pins and files."""

from __future__ import annotations

from tests.support.importers import RecordingSink
from tests.support.slack_export import gid


def test_microsecond_timestamps_keep_order_and_build_ids(generated_slack: RecordingSink):
    first = generated_slack.message(gid("1600000100.000001"))
    second = generated_slack.message(gid("1600000100.000002"))
    assert first["ts"] == 1600000100.000001 and second["ts"] > first["ts"]


def test_system_messages(generated_slack: RecordingSink):
    join = generated_slack.message(gid("1600000101.000001"))
    assert (join["t"], join["msg"], join["groupable"]) == ("uj", "ann", False)
    assert generated_slack.message(gid("1600000102.000001"))["t"] == "ul"
    topic = generated_slack.message(gid("1600000103.000001"))
    assert (topic["t"], topic["msg"]) == ("room_changed_topic", "New #no-creator topic")
    purpose = generated_slack.message(gid("1600000104.000001"))
    assert (purpose["t"], purpose["msg"]) == ("room_changed_description", "Purpose & more")
    rename = generated_slack.message(gid("1600000105.000001"))
    assert (rename["t"], rename["msg"]) == ("r", "general-2")


def test_me_and_bot_messages(generated_slack: RecordingSink):
    assert generated_slack.message(gid("1600000106.000001"))["msg"] == "_waves_"
    bot = generated_slack.message(gid("1600000107.000001"))
    assert bot["bot"] is True and bot["alias"] == "CI" and bot["emoji"] == ":robot_face:"
    assert (
        bot["u"] == {"_id": "rocket.cat"}
        and bot["msg"] == "build [#1](https://ci.example/1) passed"
    )
    assert bot["attachments"] == [{"fallback": "a <b>", "color": "good"}]
    assert generated_slack.message(gid("1600000128.000001"))["u"] == {"_id": "rocket.cat"}


def test_edits_in_place_and_across_day_files(generated_slack: RecordingSink):
    marked = generated_slack.message(gid("1600000108.000001"))
    assert marked["editedAt"] == 1600000109.0 and marked["editedBy"] == "U1"
    changed = generated_slack.message(gid("1600000118.000001"))
    assert changed["msg"] == "new text" and changed["editedAt"] == 1600000118.5
    next_day = generated_slack.message(gid("1600000100.000001"))
    assert next_day["msg"] == "first, edited next day"
    assert next_day["editedAt"] == 1600086400.000001
    orphan = generated_slack.message(gid("1500000000.000001"))
    assert orphan["msg"] == "edit of something not exported"
    assert generated_slack.warned("1 edit(s) refer to messages missing")
    assert not any(m.get("t") == "message_changed" for m in generated_slack.messages)
    assert sum(m["_id"] == gid("1600000118.000001") for m in generated_slack.messages) == 1


def test_reactions_keep_every_emoji(generated_slack: RecordingSink):
    assert generated_slack.message(gid("1600000112.000001"))["reactions"] == {
        ":thumbsup:": {"name": ":thumbsup:", "users": ["U1", "U2"]},
        ":smile:": {"name": ":smile:", "users": ["rocket.cat"]},
    }


def test_threads_and_broadcasts(generated_slack: RecordingSink):
    parent = generated_slack.message(gid("1600000113.000001"))
    assert parent["tcount"] == 2 and parent["replies"] == ["U2", "U1"]
    assert parent["tlm"] == 1600000114.000001  # from replies[], as latest_reply is missing
    reply = generated_slack.message(gid("1600000114.000001"))
    assert reply["tmid"] == parent["_id"] and "tshow" not in reply
    broadcast = generated_slack.message(gid("1600000115.000001"))
    assert broadcast["tmid"] == parent["_id"] and broadcast["tshow"] is True


def test_deleted_thread_parents_become_placeholders(generated_slack: RecordingSink):
    placeholder = generated_slack.message(gid("1600000099.000001"))
    assert placeholder["t"] == "rm" and placeholder["u"] == {"_id": "U2"}
    assert placeholder["tcount"] == 1 and placeholder["tlm"] == 1600000124.000001
    assert generated_slack.message(gid("1600000124.000001"))["tmid"] == placeholder["_id"]
    tombstone = generated_slack.message(gid("1600000125.000001"))
    assert tombstone["t"] == "rm" and tombstone["tcount"] == 1
    assert generated_slack.message(gid("1600000126.000001"))["tmid"] == tombstone["_id"]
    assert generated_slack.warned("1 thread(s) start with a message that is not in the export")


def test_deleted_messages_are_not_imported(generated_slack: RecordingSink):
    assert not any(
        m["_id"] in (gid("1600000122.000001"), gid("1600000123.000001"))
        for m in generated_slack.messages
    )


def test_pins_are_kept(generated_slack: RecordingSink):
    assert generated_slack.message(gid("1600000119.000001"))["pinned"] is True
    assert generated_slack.message(gid("1600000121.000001"))["pinned"] is True
    notice = generated_slack.message(gid("1600000120.000001"))
    assert notice["t"] == "message_pinned" and notice["attachments"][0]["text"] == "pin me"


def test_files_become_visible_file_messages(generated_slack: RecordingSink):
    base = gid("1600000116.000001")
    assert generated_slack.message(base)["msg"] == "look"
    a, b = (generated_slack.message(f"{base}-file{n}") for n in (1, 3))
    assert "_hidden" not in a and a["msg"] == "" and a["ts"] == generated_slack.message(base)["ts"]
    assert a["_importFile"] == {
        "downloadUrl": "https://files.slack.com/a.png", "id": "F1", "size": 10, "name": "a.png",
        "external": False, "source": "slack",
    }  # fmt: skip
    assert b["_importFile"]["size"] == 20
    assert not any(m["_id"] == f"{base}-file2" for m in generated_slack.messages)
    assert generated_slack.warned("1 file(s) have no download URL")
    file_parent = generated_slack.message(gid("1600000127.500000"))  # replies point at it
    assert generated_slack.message(gid("1600000127.600000"))["tmid"] == file_parent["_id"]
    only_file = gid("1600000117.000001")
    assert not any(m["_id"] == only_file for m in generated_slack.messages)  # no empty bubble
    assert generated_slack.message(f"{only_file}-file1")["_importFile"]["name"] == "c.pdf"
