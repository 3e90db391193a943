"""A generated Slack export with every feature Ferry maps, for the Slack parser tests."""

from __future__ import annotations

import json


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


def gid(ts: str, channel: str = "C1") -> str:
    return f"slack-{channel}-{ts.replace('.', '-')}"
