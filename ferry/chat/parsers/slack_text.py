"""Slack's text and loosely typed values, read the way Rocket.Chat wants them.

Slack writes mrkdwn: `<@U123>` mentions, `<#C123|name>` channel links, `<!here>`
commands and `<url|label>` links, with `<`, `>` and `&` HTML-escaped. Times are `ts`
strings with microseconds, and numbers come as numbers or as strings.
"""

from __future__ import annotations

import re
from typing import Any

from ferry.kernel.rocketchat import ROCKET_CAT

SLACKBOT = "USLACKBOT"
# Slack names some emoji differently from Rocket.Chat's emoji set.
_EMOJI_RENAMES = {"simple_smile": "smile", "memo": "pencil", "piggy": "pig", "uk": "gb"}
_EMOJI_IN_TEXT = re.compile(r":(" + "|".join(_EMOJI_RENAMES) + r"):")
_MARKUP = re.compile(r"<([^<>\n]+)>|&(lt|gt|amp);")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&"}


def user_import_id(slack_id: str) -> str:
    """Slackbot's messages and mentions go to Rocket.Chat's own bot."""
    return ROCKET_CAT if slack_id == SLACKBOT else slack_id


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def emoji_name(name: str) -> str:
    return _EMOJI_RENAMES.get(name, name)


def convert_text(text: str, channel_names: dict[str, str]) -> tuple[str, list[str], list[str]]:
    """Slack mrkdwn to Rocket.Chat markdown: (text, mentioned user import ids, channel names)."""
    mentions: list[str] = []
    channels: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(2):
            return _ENTITIES[match.group(2)]
        target, _, label = match.group(1).partition("|")
        label = _unescape(label)
        if target.startswith("@"):
            mentioned = user_import_id(target[1:])
            if mentioned not in mentions:
                mentions.append(mentioned)
            return f"@{mentioned}"
        if target.startswith("#"):
            name = label or channel_names.get(target[1:], target[1:])
            if name not in channels:
                channels.append(name)
            return f"#{name}"
        if target.startswith("!"):
            command = target[1:].split("^", 1)[0]
            if command == "here":
                return "@here"
            if command in ("channel", "everyone"):
                return "@all"
            return label or command
        url = _unescape(target)
        return f"[{label}]({url})" if label and label != url else url

    converted = _MARKUP.sub(replace, text)
    converted = _EMOJI_IN_TEXT.sub(lambda m: f":{_EMOJI_RENAMES[m.group(1)]}:", converted)
    return converted, mentions, channels


def ts_string(value: Any) -> str | None:
    """Slack's `ts` as the exact string Slack wrote, which is also what ids are built from."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return None
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.6f}"
    return None


def as_number(value: Any) -> float | None:
    """Slack writes `created`, `tz_offset` and friends as numbers or as strings."""
    # Most messages have no reply_count; a raised and caught TypeError for each one
    # was 6% of a Slack prepare.
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def text_value(holder: Any) -> str | None:
    if isinstance(holder, dict):
        holder = holder.get("value")
    return holder if isinstance(holder, str) and holder else None
