"""Slack export zips: the real samples, users and conversations, refusals, and scale."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

from ferry.chat.parsers import REGISTRY
from ferry.chat.parsers.base import PrepareOptions
from ferry.chat.parsers.slack import SlackImporter
from tests.support.importers import FIXTURES, RecordingSink, build_zip, prepare, prepare_fails
from tests.support.slack_export import generated_export, gid, message

ZULIP = FIXTURES / "zulip-slack"
SLACKDUMP = FIXTURES / "slackdump"


def fixture_json(path: Path):
    return json.loads(path.read_text())


def test_registry_names_the_slack_importer_as_rocket_chat_does():
    assert (REGISTRY["slack"].key, REGISTRY["slack"].name) == ("slack", "Slack")


# -- real exports ----------------------------------------------------------------------


def test_the_2016_export_imports_every_message_and_reports_what_it_drops():
    sink = prepare(SlackImporter(), FIXTURES / "slack-export-viewer" / "testarchive.zip")

    assert {u["username"] for u in sink.users} == {
        "abilinski",
        "hamza",
        "doubledeez",
        "heroeshannibal",
    }
    assert all(u["emails"] == [] for u in sink.users)  # the export has none; still importable
    hamza = next(u for u in sink.users if u["username"] == "hamza")
    assert hamza["utcOffset"] == -8.0 and hamza["avatarUrl"].startswith("https://")

    channels = {c["name"]: c for c in sink.channels}
    assert set(channels) == {"enrique", "traveling-sailor"}
    assert all(
        c["t"] == "c" and isinstance(c["ts"], float) for c in channels.values()
    )  # "created" was a string

    # 158 entries: 3 bot_add events are dropped (and said so), 3 file_share lose their
    # "uploaded a file" text to a file message; the rest are messages.
    assert sink.warned("bot_add (3)")
    assert len(sink.messages) == 155
    assert len({m["_id"] for m in sink.messages}) == 155

    files = [m for m in sink.messages if "_importFile" in m]
    assert len(files) == 3
    assert all("_hidden" not in m and m["_id"].endswith("-file1") and m["msg"] == "" for m in files)
    cities = next(m for m in files if m["_importFile"]["name"] == "100_cities.js")
    assert cities["_importFile"] == {
        "downloadUrl": cities["_importFile"]["downloadUrl"],
        "id": "F0VNAKDE2",
        "size": 4163,
        "name": "100_cities.js",
        "external": False,
        "source": "slack",
    }
    assert "/download/100_cities.js" in cities["_importFile"]["downloadUrl"]
    assert not any("uploaded a file" in m["msg"] for m in sink.messages)

    reacted = next(m for m in sink.messages if "reactions" in m)
    assert reacted["reactions"] == {":botman:": {"name": ":botman:", "users": ["U0BMYT2FL"]}}
    assert reacted["bot"] is True and reacted["u"] == {"_id": "rocket.cat"}
    commit_note = reacted["attachments"][0]["text"]
    assert commit_note.startswith("[b698a38](https://github.com/mesos-magellan/enrique/commit/")

    joins = [m for m in sink.messages if m.get("t") == "uj"]
    assert joins and all(m["groupable"] is False for m in joins)
    assert any(
        m["msg"].startswith("10_cities.js") is False and "commented" not in m["msg"]
        for m in sink.messages
    )


def test_the_slackdump_export_keeps_tombstones_files_and_bot_posts():
    sink = prepare(SlackImporter(), SLACKDUMP / "source_export.zip")

    general = sink.channel("CO69735E8A")
    assert general["_id"] == "GENERAL" and general["t"] == "c"
    assert general["topic"] and general["description"] and general["u"] == {"_id": "UOF82F39AE"}

    assert len(sink.users) == 10
    assert any(u["deleted"] for u in sink.users)
    assert {u["type"] for u in sink.users} == {"user", "bot"}

    tombstone = sink.message("slack-CO69735E8A-1736554828-343759")
    assert tombstone["t"] == "rm" and tombstone["tcount"] == 1
    reply = sink.message("slack-CO69735E8A-1736554838-911679")
    assert reply["tmid"] == tombstone["_id"]

    parent = sink.message("slack-CO69735E8A-1736478630-905399")
    assert parent["tcount"] == 2 and parent["tlm"] == 1736554783.040199
    assert set(parent["replies"]) == {"UOB5F987BF17", "UOF82F39AE"}

    bot_post = next(m for m in sink.messages if m.get("bot"))
    assert bot_post["alias"] == "2NR0w" and bot_post["editedBy"] == "UO2FDF223549"
    assert bot_post["editedAt"] == 1737160371.0

    files = [m for m in sink.messages if "_importFile" in m]
    assert [f["_importFile"]["id"] for f in files] == ["FO260121BC1C"]  # the gdoc has no URL
    assert sink.warned("1 file(s) have no download URL")
    stamps = [m["ts"] for m in sink.messages if "_importFile" not in m]
    assert stamps == sorted(stamps)  # microseconds kept: one day file is in order


def test_slackdump_api_lists_map_slackbot_and_honour_the_mpim_setting(tmp_path: Path):
    names = ("users.json", "channels.json", "dms.json", "mpims.json", "groups.json")
    source = build_zip(
        tmp_path / "x.zip", {n: (SLACKDUMP / "export" / n).read_bytes() for n in names}
    )

    sink = prepare(SlackImporter(), source)
    assert not any("USLACKBOT" in u["importIds"] for u in sink.users)
    assert any(u["type"] == "bot" and u["deleted"] for u in sink.users)  # jirabot
    assert all(c["users"] == [] for c in sink.channels if c["t"] == "c")  # "members": null
    dms = [c for c in sink.channels if c["t"] == "d"]
    assert len(dms) == 8 and any("rocket.cat" in c["users"] for c in dms)
    mpims = [c for c in sink.channels if c["name"] and c["name"].startswith("mpdm-")]
    assert len(mpims) == 2 and all(c["t"] == "p" for c in mpims)

    as_dms = prepare(SlackImporter(), source, direct_message_max_users=10)
    assert sum(c["t"] == "d" for c in as_dms.channels) == 10
    assert all(c["name"] is None for c in as_dms.channels if c["t"] == "d")


def test_zulip_samples_threads_broadcasts_mentions_and_files(tmp_path: Path):
    messages = ZULIP / "exported_messages_fixtures"
    single = [
        fixture_json(messages / f"message_with_{name}.json")
        for name in (
            "user_mentions",
            "links",
            "channel_mentions",
            "workspace_mentions",
            "variety_files_and_rich_text",
        )
    ]
    source = build_zip(
        tmp_path / "x.zip",
        {
            "slack export/users.json": (messages / "users.json").read_bytes(),
            "slack export/channels.json": (ZULIP / "channels.json").read_bytes(),
            "slack export/dms.json": (ZULIP / "dms.json").read_bytes(),
            "slack export/mpims.json": (ZULIP / "mpims.json").read_bytes(),
            "slack export/random/2015-06-12.json": (
                messages / "thread_with_broadcast_reply.json"
            ).read_bytes(),
            "slack export/random/2015-06-13.json": (messages / "normal_thread.json").read_bytes(),
            "slack export/general/2026-02-26.json": single,
        },
    )
    sink = prepare(SlackImporter(), source)

    random = sink.channel("C061A0WJG")
    assert random["archived"] is True and random["topic"] == "random" and random["u"] is None
    assert sink.user("U061A1R2R")["emails"] == ["jon@example.com"]

    broadcast = sink.message("slack-C061A0WJG-1434139104-000002")
    assert broadcast["tmid"] == "slack-C061A0WJG-1434139102-000002" and broadcast["tshow"] is True
    plain_reply = sink.message("slack-C061A0WJG-1434139103-000002")
    assert plain_reply["tmid"] == broadcast["tmid"] and "tshow" not in plain_reply
    early_reply = sink.message("slack-C061A0WJG-1449868294-000007")  # older than its parent
    assert early_reply["tmid"] == "slack-C061A0WJG-1539868294-000007"

    texts = {m["_id"].rsplit("-", 2)[-2]: m for m in sink.messages if m["rid"] == "C061A0YJG"}
    mention = texts["1772112471"]
    assert mention["msg"] == "@U06NU4E26M9 test user mention @U074VRHQ11T"
    assert mention["mentions"] == ["U06NU4E26M9", "U074VRHQ11T"]
    assert (
        texts["1772029188"]["msg"].splitlines()[1]
        == "*[Text with a link](https://chat.zulip.org/)*"
    )
    channel_mention = texts["1772112421"]
    assert channel_mention["msg"] == "#C079A3FA12P #rich-text-blocks #general"
    assert channel_mention["channels"] == ["C079A3FA12P", "rich-text-blocks", "general"]
    assert texts["1772112449"]["msg"] == "@all _*@here*_ test mention"

    file_messages = [m for m in sink.messages if "_importFile" in m]
    assert [m["_id"][-6:] for m in file_messages] == ["-file1", "-file2"]
    assert all(m["_importFile"]["source"] == "slack" and "_hidden" not in m for m in file_messages)


# -- the generated export: users, conversations, problems -----------------------------------


def test_users_map_profiles_bots_deleted_and_slackbot(generated_slack: RecordingSink):
    ann = generated_slack.user("U1")
    assert ann == {
        "importIds": ["U1"], "username": "ann", "name": "Ann A.", "emails": ["ann@example.com"],
        "type": "user", "deleted": False, "roles": [], "utcOffset": 5.5,
        "avatarUrl": "https://avatars.example/ann-original.png", "statusText": "On call",
        "bio": "SRE",
    }  # fmt: skip
    bob = generated_slack.user("U2")
    assert bob["deleted"] is True and bob["emails"] == [] and bob["avatarUrl"].endswith("bob.png")
    bot = generated_slack.user("B1")
    assert bot["type"] == "bot" and bot["roles"] == ["bot"]
    assert not any(
        "USLACKBOT" in u["importIds"] or "rocket.cat" in u["importIds"]
        for u in generated_slack.users
    )


def test_channels_groups_mpims_and_dms(generated_slack: RecordingSink):
    general = generated_slack.channel("C1")
    assert general["_id"] == "GENERAL" and general["topic"] == "All things"
    assert general["description"] == "Everyone" and general["ts"] == 1600000000.0
    assert generated_slack.channel("C2")["u"] is None  # kept although its creator is unknown
    assert generated_slack.channel("C2")["ts"] == 1600000001.0
    secret = generated_slack.channel("G1")
    assert secret["t"] == "p" and secret["archived"] is True and secret["u"] == {"_id": "U2"}
    assert generated_slack.channel("G2")["t"] == "p"  # 3 members > direct_message_max_users (1)
    dm = generated_slack.channel("D1")
    assert dm["t"] == "d" and dm["users"] == ["U1", "rocket.cat"] and dm["name"] is None
    placed = {m["msg"]: m["rid"] for m in generated_slack.messages}
    assert (placed["private"], placed["group chat"], placed["dm"]) == ("G1", "G2", "D1")
    assert generated_slack.message(gid("1600000400.000001", "D1"))["u"] == {"_id": "rocket.cat"}


def test_problems_are_reported_not_silent(generated_slack: RecordingSink):
    assert generated_slack.warned("'ghost-channel'", "matches no conversation")
    assert not any(m["msg"] == "lost?" for m in generated_slack.messages)
    assert generated_slack.warned(
        "general/2020-09-15.json", "after 1 message(s)", "rest of this file was skipped"
    )
    assert generated_slack.message(gid("1600172800.000001"))["msg"] == "ok"
    assert generated_slack.message(gid("1600259200.000001"))["msg"] == "after the broken day"
    assert generated_slack.warned("bot_add (1)")


def test_reimporting_gives_the_same_records(tmp_path: Path, generated_slack: RecordingSink):
    again = prepare(SlackImporter(), build_zip(tmp_path / "again.zip", generated_export()))
    assert again.messages == generated_slack.messages
    assert len({m["_id"] for m in again.messages}) == len(again.messages)


# -- refusals and scale -----------------------------------------------------------------


def test_a_malformed_users_file_fails_the_import(tmp_path: Path):
    source = build_zip(tmp_path / "x.zip", {"users.json": '[{"id": "U1"', "channels.json": "[]"})
    message, _ = prepare_fails(SlackImporter(), source)
    assert message.startswith("users.json is not a valid Slack export file")


def test_a_channels_file_that_is_not_an_array_fails_the_import(tmp_path: Path):
    source = build_zip(tmp_path / "x.zip", {"users.json": "[]", "channels.json": '{"ok": true}'})
    message, _ = prepare_fails(SlackImporter(), source)
    assert "channels.json" in message and "array" in message


def test_a_zip_that_is_not_a_slack_export_is_refused(tmp_path: Path):
    source = build_zip(tmp_path / "x.zip", {"users.csv": "a, b, c\n"})
    message, _ = prepare_fails(SlackImporter(), source)
    assert "not a Slack export" in message


def test_an_empty_export_is_refused(tmp_path: Path):
    source = build_zip(tmp_path / "x.zip", {"users.json": "[]", "channels.json": "[]"})
    message, _ = prepare_fails(SlackImporter(), source)
    assert message == "No valid record found in the import file."


def test_a_busy_channel_is_streamed_not_loaded(tmp_path: Path):
    day = [
        message(f"1600000000.{i:06d}", "x" * 400, thread_ts="1600000000.000000")
        for i in range(1, 10_001)
    ]
    body = json.dumps(day).encode()
    source = build_zip(
        tmp_path / "x.zip",
        {
            "users.json": "[]",
            "channels.json": [{"id": "C1", "name": "busy"}],
            "busy/2020-09-13.json": body,
        },
    )

    class Counting(RecordingSink):
        count = 0

        def add_message(self, record: dict) -> None:
            self.count += 1

    sink = Counting()
    progress: list[float] = []
    tracemalloc.start()
    SlackImporter().prepare(source, sink, PrepareOptions(on_progress=progress.append))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sink.count == 10_001  # and one placeholder for the absent thread parent
    assert len(body) > 4_000_000 and peak < 2 * 1024 * 1024
    assert progress[-1] == 100.0
