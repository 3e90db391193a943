"""HipChat's message text and timestamps, as Rocket.Chat shows and orders them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from markdownify import MarkdownConverter, abstract_inline_conversion


class _ChatMarkdown(MarkdownConverter):
    """HTML (integration notifications) to the Markdown Rocket.Chat renders."""

    class Options(MarkdownConverter.DefaultOptions):
        heading_style = "ATX"
        bullets = "-"
        # Escaping would turn `@john_doe` into `@john\_doe` and break the mention.
        escape_asterisks = False
        escape_underscores = False

    # Chat Markdown: `_italic_`, and a line break is just a newline.
    convert_em = convert_i = abstract_inline_conversion(lambda self: "_")

    def convert_br(self, el: Any, text: str, parent_tags: Any) -> str:
        return "\n"

    def convert_img(self, el: Any, text: str, parent_tags: Any) -> str:
        # A link rather than an inline image, as Rocket.Chat's HipChat importer wrote them.
        src = el.attrs.get("src") or ""
        alt = el.attrs.get("alt") or src
        return f"[{alt}]({src})" if src else alt


def html_to_markdown(html: str) -> str:
    return _ChatMarkdown().convert(html).strip()


def message_text(body: dict) -> str:
    text = body.get("message")
    text = text if isinstance(text, str) else ""
    if body.get("message_format") == "html":
        text = html_to_markdown(text)
    if text.startswith("/me "):
        text = f"_{text[4:]}_"
    return text


_MICROS_SUFFIX = re.compile(r"(.+?)\s+(\d{1,6})")


def parse_timestamp(value: Any) -> float | None:
    """HipChat time -> float Unix seconds, keeping sub-second precision.

    Forms seen: `2017-06-26T15:21:44Z 123456` (the microseconds after a space),
    ISO 8601 with a fraction and/or an offset, and plain epoch seconds. A time without
    an offset is UTC, which is what HipChat Server stored.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    micros = None
    suffix = _MICROS_SUFFIX.fullmatch(text)
    if suffix:
        text, micros = suffix.group(1), int(suffix.group(2))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if micros is not None and moment.microsecond == 0:
        moment = moment.replace(microsecond=micros)
    return moment.timestamp()
