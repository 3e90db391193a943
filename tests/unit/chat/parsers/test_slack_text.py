"""Slack mrkdwn to Rocket.Chat markdown: mentions, channel links, links and escapes."""

from __future__ import annotations

from ferry.chat.parsers.slack_text import convert_text
from tests.support.importers import RecordingSink
from tests.support.slack_export import gid


def test_mentions_links_and_escapes(generated_slack: RecordingSink):
    mention = generated_slack.message(gid("1600000110.000001"))
    assert mention["msg"] == "hi @U2 and @U1 and @rocket.cat, see #no-creator & @here"
    assert mention["mentions"] == ["U2", "U1", "rocket.cat"] and mention["channels"] == [
        "no-creator"
    ]
    links = generated_slack.message(gid("1600000111.000001"))
    assert links["msg"] == "@all @all [a@b.io](mailto:a@b.io) https://x.io 1 < 2 > 0"


def test_convert_text_leaves_plain_text_alone():
    assert convert_text("a <b and c> d", {}) == ("a b and c d", [], [])
    assert convert_text("plain :memo:", {}) == ("plain :pencil:", [], [])
