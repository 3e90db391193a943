"""Staged values in the form Rocket.Chat stores them: dates and merged id lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_PREFIXES: dict[int, str] = {}


def iso_from_micros(micros: int) -> str:
    """`2023-03-24T14:03:05.123Z` (a JavaScript Date's JSON) from Unix microseconds."""
    # Called for every message; strftime alone was a fifth of the import's time.
    days, rest = divmod(micros, 86_400_000_000)
    prefix = _DAY_PREFIXES.get(days)
    if prefix is None:
        prefix = (_EPOCH + timedelta(days=days)).strftime("%Y-%m-%dT")
        _DAY_PREFIXES[days] = prefix
    seconds, fraction = divmod(rest, 1_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}.{fraction // 1000:03d}Z"


def micros_from_seconds(value: Any) -> int | None:
    """Unix seconds (float, Slack precision) to integer microseconds; None if unusable."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if seconds != seconds or abs(seconds) > 1e11:  # NaN, or beyond year 5000
        return None
    return round(seconds * 1_000_000)


def iso_or_none(value: Any) -> str | None:
    micros = micros_from_seconds(value)
    return None if micros is None else iso_from_micros(micros)


def merged(first: list | None, second: list | None) -> list:
    """Both lists' items, first list first, each once."""
    return list(dict.fromkeys([*(first or []), *(second or [])]))
