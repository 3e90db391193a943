"""Users' avatars as Rocket.Chat serves them at `/avatar/{username}`.

    avatars = Avatars(users, directory)
    avatars.for_username("ann") -> (the stored file's Path or the SVG's bytes, media type)

An avatar fetched by downloadPendingAvatars (kept as `<directory>/<user id>`) is served
as it is, its type read from its first bytes. Anyone else, and any name that is no
user's, gets the initials picture Rocket.Chat draws: the name's initials in white on a
colour chosen by the name, as SVG, so an answer never tells which names exist.
"""

from __future__ import annotations

import hashlib
import re
from html import escape
from pathlib import Path

from storage.users import UserRepository

SVG_TYPE = "image/svg+xml"
# Leading bytes of the picture formats an imported avatar may be in.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_COLOURS = (
    "#F44336", "#E91E63", "#9C27B0", "#673AB7", "#3F51B5", "#2196F3", "#03A9F4",
    "#00BCD4", "#009688", "#4CAF50", "#8BC34A", "#CDDC39", "#FFC107", "#FF9800",
    "#FF5722", "#795548", "#9E9E9E", "#607D8B",
)  # fmt: skip
_WORD_SEPARATORS = re.compile(r"[\s._-]+")


def picture_type(data: bytes) -> str:
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def initials(name: str) -> str:
    """Up to two letters: the first of the first two words, or the first of one word."""
    words = [word for word in _WORD_SEPARATORS.split(name) if word]
    if not words:
        return "?"
    letters = words[0][0] + (words[1][0] if len(words) > 1 else "")
    return letters.upper()


def initials_svg(name: str) -> bytes:
    colour = _COLOURS[hashlib.sha256(name.encode()).digest()[0] % len(_COLOURS)]
    text = escape(initials(name))
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"'
        ' viewBox="0 0 200 200">'
        f'<rect width="100%" height="100%" fill="{colour}"/>'
        '<text x="50%" y="50%" dy="0.36em" text-anchor="middle" fill="#ffffff"'
        f' font-family="Helvetica, Arial, sans-serif" font-size="100">{text}</text></svg>'
    ).encode()


class Avatars:
    def __init__(self, users: UserRepository, directory: Path):
        self._users = users
        self._directory = directory

    def for_username(self, username: str) -> tuple[Path | bytes, str]:
        user = self._users.by_username(username)
        stored = (user or {}).get("avatarETag")
        if stored:
            path = self._directory / str(stored)
            if path.name == str(stored) and path.is_file():
                with path.open("rb") as handle:
                    return path, picture_type(handle.read(16))
        return initials_svg(username), SVG_TYPE

    def username_of(self, user_id: str | None, username: str | None) -> str | None:
        """users.getAvatar's user: by id, else the username as given."""
        if user_id:
            user = self._users.get(user_id)
            return user.get("username") if user else None
        return username or None
