"""Slack export zips: the real samples, and a generated export with every feature Ferry maps."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from ferry.chat.parsers import REGISTRY
from ferry.chat.parsers.base import PrepareOptions
from ferry.chat.parsers.slack import SlackImporter, convert_text
from tests.support.importers import FIXTURES, RecordingSink, build_zip, prepare, prepare_fails

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
    assert all(m["_hidden"] and m["_id"].endswith("-file1") and m["msg"] == "" for m in files)
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
    assert general["_id"] == "general" and general["t"] == "c"
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
    assert all(m["_importFile"]["source"] == "slack" and m["_hidden"] for m in file_messages)


# -- a generated export with every feature ------------------------------------------------


def message(ts: str, text: str = "", user: str = "U1", **fields) -> dict:
    return {"type": "message", "user": user, "text": text, "ts": ts, **fields}


def generated_export() -> dict:
    users = [
        {
            "id": "U1",
            "name": "ann",
            "real_name": "Ann",
            "tz_offset": 19800,
            "profile": {
                "real_name": "Ann A.",
                "email": "ann@example.com",
                "image_original": "https://avatars.example/ann-original.png",
                "image_512": "https://avatars.example/ann-512.png",
                "status_text": "On call",
                "title": "SRE",
            },
        },
        {
            "id": "U2",
            "name": "bob",
            "deleted": True,
            "profile": {"image_512": "https://avatars.example/bob.png"},
        },
        {"id": "B1", "name": "deploybot", "is_bot": True, "profile": {"real_name": "Deploy Bot"}},
        {"id": "USLACKBOT", "name": "slackbot", "is_bot": True, "profile": {}},
    ]
    channels = [
        {
            "id": "C1",
            "name": "general",
            "creator": "U1",
            "members": ["U1", "U2"],
            "created": 1600000000,
            "is_general": True,
            "topic": {"value": "All things"},
            "purpose": {"value": "Everyone"},
        },
        {"id": "C2", "name": "no-creator", "members": ["U1"], "created": "1600000001"},
    ]
    groups = [
        {
            "id": "G1",
            "name": "secret",
            "creator": "U2",
            "members": ["U1", "U2"],
            "is_archived": True,
        }
    ]
    mpims = [
        {
            "id": "G2",
            "name": "mpdm-ann--bob--deploybot-1",
            "creator": "U1",
            "members": ["U1", "U2", "B1"],
        }
    ]
    dms = [{"id": "D1", "members": ["U1", "USLACKBOT"]}]
    day1 = [
        message("1600000100.000001", "first"),
        message("1600000100.000002", "second in the same second"),
        message("1600000101.000001", "", subtype="channel_join"),
        message("1600000102.000001", "", user="U2", subtype="channel_leave"),
        message(
            "1600000103.000001", "", subtype="channel_topic", topic="New <#C2|no-creator> topic"
        ),
        message("1600000104.000001", "", subtype="channel_purpose", purpose="Purpose &amp; more"),
        message(
            "1600000105.000001", "", subtype="channel_name", name="general-2", old_name="general"
        ),
        message("1600000106.000001", "waves", subtype="me_message"),
        {
            "type": "message",
            "subtype": "bot_message",
            "bot_id": "BX",
            "username": "CI",
            "icons": {"emoji": ":robot_face:"},
            "text": "build <https://ci.example/1|#1> passed",
            "ts": "1600000107.000001",
            "attachments": [{"fallback": "a &lt;b&gt;", "color": "good"}],
        },
        message("1600000108.000001", "typo", edited={"user": "U1", "ts": "1600000109.000000"}),
        message(
            "1600000110.000001", "hi <@U2> and <@U1|ann> and <@USLACKBOT>, see <#C2> &amp; <!here>"
        ),
        message(
            "1600000111.000001",
            "<!channel> <!everyone> <mailto:a@b.io|a@b.io> <https://x.io> 1 &lt; 2 &gt; 0",
        ),
        message(
            "1600000112.000001",
            "react",
            reactions=[
                {"name": "thumbsup", "users": ["U1", "U2"], "count": 2},
                {"name": "simple_smile", "users": ["USLACKBOT"], "count": 1},
            ],
        ),
        message(
            "1600000113.000001",
            "thread start",
            thread_ts="1600000113.000001",
            reply_count=2,
            reply_users=["U2", "U1"],
            replies=[{"user": "U2", "ts": "1600000114.000001"}],
        ),  # no latest_reply
        message(
            "1600000114.000001",
            "reply",
            user="U2",
            thread_ts="1600000113.000001",
            parent_user_id="U1",
        ),
        message(
            "1600000115.000001",
            "also to channel",
            subtype="thread_broadcast",
            thread_ts="1600000113.000001",
            parent_user_id="U1",
        ),
        message(
            "1600000116.000001",
            "look",
            files=[
                {
                    "id": "F1",
                    "name": "a.png",
                    "size": 10,
                    "url_private_download": "https://files.slack.com/a.png",
                },
                {"id": "F2", "name": "doc", "is_external": True, "url_private_download": ""},
                {
                    "id": "F3",
                    "name": "b.txt",
                    "size": "20",
                    "url_private_download": "https://files.slack.com/b.txt",
                },
            ],
        ),
        message(
            "1600000117.000001",
            "",
            files=[
                {
                    "id": "F4",
                    "name": "c.pdf",
                    "url_private_download": "https://files.slack.com/c.pdf",
                }
            ],
        ),
        message("1600000118.000001", "old text"),
        message(
            "1600000118.500000",
            "",
            subtype="message_changed",
            message=message(
                "1600000118.000001", "new text", edited={"user": "U1", "ts": "1600000118.5"}
            ),
        ),
        message("1600000119.000001", "pin me"),
        message(
            "1600000120.000001",
            "<@U1> pinned a message to this channel.",
            subtype="pinned_item",
            item_type="C",
            attachments=[{"text": "pin me", "ts": "1600000119.000001"}],
        ),
        message("1600000121.000001", "already pinned", pinned_to=["C1"]),
        message("1600000122.000001", "regret"),
        message("1600000123.000001", "", subtype="message_deleted", deleted_ts="1600000122.000001"),
        message(
            "1600000124.000001",
            "reply to a vanished parent",
            thread_ts="1600000099.000001",
            parent_user_id="U2",
        ),
        message(
            "1600000125.000001",
            "",
            subtype="tombstone",
            thread_ts="1600000125.000001",
            reply_count=1,
            reply_users=["U1"],
            latest_reply="1600000126.000001",
            hidden=True,
        ),
        message("1600000126.000001", "under a tombstone", thread_ts="1600000125.000001"),
        message("1600000127.000001", "", subtype="bot_add"),
        message(
            "1600000127.500000",
            "",
            thread_ts="1600000127.500000",
            files=[
                {
                    "id": "F5",
                    "name": "d.png",
                    "url_private_download": "https://files.slack.com/d.png",
                }
            ],
        ),
        message("1600000127.600000", "nice picture", thread_ts="1600000127.500000"),
        message("1600000128.000001", "from slackbot", user="USLACKBOT"),
    ]
    day2 = [
        message(
            "1600086400.000001",
            "",
            subtype="message_changed",
            message=message("1600000100.000001", "first, edited next day"),
        ),
        message(
            "1600086401.000001",
            "",
            subtype="message_changed",
            message=message("1500000000.000001", "edit of something not exported"),
        ),
    ]
    return {
        "export/users.json": users,
        "export/channels.json": channels,
        "export/groups.json": groups,
        "export/mpims.json": mpims,
        "export/dms.json": dms,
        "export/general/2020-09-13.json": day1,
        "export/general/2020-09-14.json": day2,
        "export/general/2020-09-15.json": json.dumps([message("1600172800.000001", "ok")])[:-1]
        + ', {"broken',
        "export/general/2020-09-16.json": [message("1600259200.000001", "after the broken day")],
        "export/secret/2020-09-13.json": [message("1600000200.000001", "private")],
        "export/mpdm-ann--bob--deploybot-1/2020-09-13.json": [
            message("1600000300.000001", "group chat")
        ],
        "export/D1/2020-09-13.json": [message("1600000400.000001", "dm", user="USLACKBOT")],
        "export/ghost-channel/2020-09-13.json": [message("1600000500.000001", "lost?")],
        "export/integration_logs.json": {"logs": []},
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> RecordingSink:
    source = build_zip(tmp_path_factory.mktemp("gen") / "slack.zip", generated_export())
    return prepare(SlackImporter(), source)


def gid(ts: str, channel: str = "C1") -> str:
    return f"slack-{channel}-{ts.replace('.', '-')}"


def test_users_map_profiles_bots_deleted_and_slackbot(generated: RecordingSink):
    ann = generated.user("U1")
    assert ann == {
        "importIds": ["U1"], "username": "ann", "name": "Ann A.", "emails": ["ann@example.com"],
        "type": "user", "deleted": False, "roles": [], "utcOffset": 5.5,
        "avatarUrl": "https://avatars.example/ann-original.png", "statusText": "On call",
        "bio": "SRE",
    }  # fmt: skip
    bob = generated.user("U2")
    assert bob["deleted"] is True and bob["emails"] == [] and bob["avatarUrl"].endswith("bob.png")
    bot = generated.user("B1")
    assert bot["type"] == "bot" and bot["roles"] == ["bot"]
    assert not any(
        "USLACKBOT" in u["importIds"] or "rocket.cat" in u["importIds"] for u in generated.users
    )


def test_channels_groups_mpims_and_dms(generated: RecordingSink):
    general = generated.channel("C1")
    assert general["_id"] == "general" and general["topic"] == "All things"
    assert general["description"] == "Everyone" and general["ts"] == 1600000000.0
    assert generated.channel("C2")["u"] is None  # kept although its creator is unknown
    assert generated.channel("C2")["ts"] == 1600000001.0
    secret = generated.channel("G1")
    assert secret["t"] == "p" and secret["archived"] is True and secret["u"] == {"_id": "U2"}
    assert generated.channel("G2")["t"] == "p"  # 3 members > direct_message_max_users (1)
    dm = generated.channel("D1")
    assert dm["t"] == "d" and dm["users"] == ["U1", "rocket.cat"] and dm["name"] is None
    placed = {m["msg"]: m["rid"] for m in generated.messages}
    assert (placed["private"], placed["group chat"], placed["dm"]) == ("G1", "G2", "D1")
    assert generated.message(gid("1600000400.000001", "D1"))["u"] == {"_id": "rocket.cat"}


def test_microsecond_timestamps_keep_order_and_build_ids(generated: RecordingSink):
    first = generated.message(gid("1600000100.000001"))
    second = generated.message(gid("1600000100.000002"))
    assert first["ts"] == 1600000100.000001 and second["ts"] > first["ts"]


def test_system_messages(generated: RecordingSink):
    join = generated.message(gid("1600000101.000001"))
    assert (join["t"], join["msg"], join["groupable"]) == ("uj", "ann", False)
    assert generated.message(gid("1600000102.000001"))["t"] == "ul"
    topic = generated.message(gid("1600000103.000001"))
    assert (topic["t"], topic["msg"]) == ("room_changed_topic", "New #no-creator topic")
    purpose = generated.message(gid("1600000104.000001"))
    assert (purpose["t"], purpose["msg"]) == ("room_changed_description", "Purpose & more")
    rename = generated.message(gid("1600000105.000001"))
    assert (rename["t"], rename["msg"]) == ("r", "general-2")


def test_me_and_bot_messages(generated: RecordingSink):
    assert generated.message(gid("1600000106.000001"))["msg"] == "_waves_"
    bot = generated.message(gid("1600000107.000001"))
    assert bot["bot"] is True and bot["alias"] == "CI" and bot["emoji"] == ":robot_face:"
    assert (
        bot["u"] == {"_id": "rocket.cat"}
        and bot["msg"] == "build [#1](https://ci.example/1) passed"
    )
    assert bot["attachments"] == [{"fallback": "a <b>", "color": "good"}]
    assert generated.message(gid("1600000128.000001"))["u"] == {"_id": "rocket.cat"}


def test_edits_in_place_and_across_day_files(generated: RecordingSink):
    marked = generated.message(gid("1600000108.000001"))
    assert marked["editedAt"] == 1600000109.0 and marked["editedBy"] == "U1"
    changed = generated.message(gid("1600000118.000001"))
    assert changed["msg"] == "new text" and changed["editedAt"] == 1600000118.5
    next_day = generated.message(gid("1600000100.000001"))
    assert next_day["msg"] == "first, edited next day"
    assert next_day["editedAt"] == 1600086400.000001
    orphan = generated.message(gid("1500000000.000001"))
    assert orphan["msg"] == "edit of something not exported"
    assert generated.warned("1 edit(s) refer to messages missing")
    assert not any(m.get("t") == "message_changed" for m in generated.messages)
    assert sum(m["_id"] == gid("1600000118.000001") for m in generated.messages) == 1


def test_mentions_links_and_escapes(generated: RecordingSink):
    mention = generated.message(gid("1600000110.000001"))
    assert mention["msg"] == "hi @U2 and @U1 and @rocket.cat, see #no-creator & @here"
    assert mention["mentions"] == ["U2", "U1", "rocket.cat"] and mention["channels"] == [
        "no-creator"
    ]
    links = generated.message(gid("1600000111.000001"))
    assert links["msg"] == "@all @all [a@b.io](mailto:a@b.io) https://x.io 1 < 2 > 0"


def test_reactions_keep_every_emoji(generated: RecordingSink):
    assert generated.message(gid("1600000112.000001"))["reactions"] == {
        ":thumbsup:": {"name": ":thumbsup:", "users": ["U1", "U2"]},
        ":smile:": {"name": ":smile:", "users": ["rocket.cat"]},
    }


def test_threads_and_broadcasts(generated: RecordingSink):
    parent = generated.message(gid("1600000113.000001"))
    assert parent["tcount"] == 2 and parent["replies"] == ["U2", "U1"]
    assert parent["tlm"] == 1600000114.000001  # from replies[], as latest_reply is missing
    reply = generated.message(gid("1600000114.000001"))
    assert reply["tmid"] == parent["_id"] and "tshow" not in reply
    broadcast = generated.message(gid("1600000115.000001"))
    assert broadcast["tmid"] == parent["_id"] and broadcast["tshow"] is True


def test_deleted_thread_parents_become_placeholders(generated: RecordingSink):
    placeholder = generated.message(gid("1600000099.000001"))
    assert placeholder["t"] == "rm" and placeholder["u"] == {"_id": "U2"}
    assert placeholder["tcount"] == 1 and placeholder["tlm"] == 1600000124.000001
    assert generated.message(gid("1600000124.000001"))["tmid"] == placeholder["_id"]
    tombstone = generated.message(gid("1600000125.000001"))
    assert tombstone["t"] == "rm" and tombstone["tcount"] == 1
    assert generated.message(gid("1600000126.000001"))["tmid"] == tombstone["_id"]
    assert generated.warned("1 thread(s) start with a message that is not in the export")


def test_deleted_messages_are_not_imported(generated: RecordingSink):
    assert not any(
        m["_id"] in (gid("1600000122.000001"), gid("1600000123.000001")) for m in generated.messages
    )


def test_pins_are_kept(generated: RecordingSink):
    assert generated.message(gid("1600000119.000001"))["pinned"] is True
    assert generated.message(gid("1600000121.000001"))["pinned"] is True
    notice = generated.message(gid("1600000120.000001"))
    assert notice["t"] == "message_pinned" and notice["attachments"][0]["text"] == "pin me"


def test_files_become_hidden_file_messages(generated: RecordingSink):
    base = gid("1600000116.000001")
    assert generated.message(base)["msg"] == "look"
    a, b = (generated.message(f"{base}-file{n}") for n in (1, 3))
    assert a["_hidden"] is True and a["msg"] == "" and a["ts"] == generated.message(base)["ts"]
    assert a["_importFile"] == {
        "downloadUrl": "https://files.slack.com/a.png", "id": "F1", "size": 10, "name": "a.png",
        "external": False, "source": "slack",
    }  # fmt: skip
    assert b["_importFile"]["size"] == 20
    assert not any(m["_id"] == f"{base}-file2" for m in generated.messages)
    assert generated.warned("1 file(s) have no download URL")
    file_parent = generated.message(gid("1600000127.500000"))  # replies point at it
    assert generated.message(gid("1600000127.600000"))["tmid"] == file_parent["_id"]
    only_file = gid("1600000117.000001")
    assert not any(m["_id"] == only_file for m in generated.messages)  # no empty bubble
    assert generated.message(f"{only_file}-file1")["_importFile"]["name"] == "c.pdf"


def test_problems_are_reported_not_silent(generated: RecordingSink):
    assert generated.warned("'ghost-channel'", "matches no conversation")
    assert not any(m["msg"] == "lost?" for m in generated.messages)
    assert generated.warned(
        "general/2020-09-15.json", "after 1 message(s)", "rest of this file was skipped"
    )
    assert generated.message(gid("1600172800.000001"))["msg"] == "ok"
    assert generated.message(gid("1600259200.000001"))["msg"] == "after the broken day"
    assert generated.warned("bot_add (1)")


def test_reimporting_gives_the_same_records(tmp_path: Path, generated: RecordingSink):
    again = prepare(SlackImporter(), build_zip(tmp_path / "again.zip", generated_export()))
    assert again.messages == generated.messages
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


def test_convert_text_leaves_plain_text_alone():
    assert convert_text("a <b and c> d", {}) == ("a b and c d", [], [])
    assert convert_text("plain :memo:", {}) == ("plain :pencil:", [], [])
