"""The username rule (the spec's `Username` schema) and Rocket.Chat's way of repairing names.

A username is 1 to 64 letters, digits, `.`, `_` and `-`: nothing that could be read as an
email address, a mention of something else, a path or a control sequence. Names from
elsewhere (an export's usernames, display names, email addresses) that break the rule
are turned into one the way Rocket.Chat suggests usernames: transliterated to ASCII,
lower-cased, every run of other characters replaced by a dot.
"""

from __future__ import annotations

import re
import unicodedata

USERNAME_PATTERN = r"^[A-Za-z0-9._-]+$"
USERNAME_MAX_LENGTH = 64

_VALID = re.compile(USERNAME_PATTERN)
_OUTSIDE = re.compile(r"[^a-z0-9._-]+")
_SEPARATORS = re.compile(r"[._-]*\.[._-]*")
# Letters that Unicode decomposition leaves as they are but that have a usual ASCII spelling.
_LETTERS = str.maketrans(
    {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th"}
)


def is_valid_username(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= USERNAME_MAX_LENGTH
        and _VALID.fullmatch(value) is not None
    )


def username_slug(text: str, max_length: int = USERNAME_MAX_LENGTH) -> str:
    """`text` as a valid username, or "" when nothing of it survives.

    `Jürgen Groß` -> `jurgen.gross`, `bob@example.com` -> `bob.example.com`,
    `../../etc` -> `etc`.
    """
    folded = unicodedata.normalize("NFKD", text.lower().translate(_LETTERS))
    ascii_only = "".join(c for c in folded if not unicodedata.combining(c))
    dotted = _SEPARATORS.sub(".", _OUTSIDE.sub(".", ascii_only))
    return dotted[:max_length].strip("._-")
