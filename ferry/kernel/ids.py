"""Identifiers and timestamps in the forms Rocket.Chat clients expect."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime

# Meteor's id alphabet: no 0/1/I/O/l/V, which read alike.
_METEOR_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"


def random_id(length: int = 17) -> str:
    """A Meteor-style id (17 characters), as Rocket.Chat uses for users, rooms and messages."""
    return "".join(secrets.choice(_METEOR_ALPHABET) for _ in range(length))


def operation_id() -> str:
    """A 24-hex id, the shape Rocket.Chat gives import operations since 6.3."""
    return secrets.token_hex(12)


def download_id() -> str:
    return str(uuid.uuid4())


def to_iso(moment: datetime) -> str:
    """`2023-03-24T14:03:05.123Z`: the JSON form of a JavaScript Date."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def now_iso() -> str:
    return to_iso(datetime.now(UTC))


def iso_from_unix(seconds: float) -> str:
    return to_iso(datetime.fromtimestamp(seconds, UTC))
