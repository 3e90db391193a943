"""The one password rule, checked wherever a password is set.

A password needs at least 12 characters (a passphrase of three or four words is the
easy way there) and must not be easy to guess: not a common password, even with
digits or symbols around it (`Password2024!`, `qwerty123456`), not one string
repeated (`abcabcabcabc`), and not a run along the alphabet, the digits or a keyboard
row (`123456789012`, `qwertyuiopas`). Letter case does not matter for these checks.

The users.create and users.update operations, FERRY_ADMIN_PASSWORD on first start and
`ferry users create` / `set-password` all go through `check_password`. Its errors name
the rule that failed and never repeat the password.
"""

from __future__ import annotations

import string
from functools import cache
from importlib import resources

from ferry.kernel.errors import MeteorError

MIN_LENGTH = 12
MAX_LENGTH = 1024

# What may surround a common word without making it any harder to guess.
_PADDING = string.digits + string.punctuation + string.whitespace

# Runs a person types without thinking; a password inside one of these (read either
# way) is refused. The digits repeat so that a run may wrap from 9 to 0.
_RUNS = (
    string.ascii_lowercase,
    string.digits * 3,
    "qwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "qazwsxedcrfvtgbyhnujmikolp",
)


def _error(rule: str, reason: str) -> MeteorError:
    return MeteorError(f"error-password-policy-not-met-{rule}", reason)


@cache
def common_passwords() -> frozenset[str]:
    """The built-in list (`ferry/common-passwords.txt`), lowercased."""
    text = resources.files("ferry").joinpath("common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().casefold()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def _is_repeated(text: str) -> bool:
    # A string is a repetition of a shorter one exactly when it occurs inside itself
    # doubled at an offset other than 0 and its length.
    return len(text) > 1 and (text + text).find(text, 1) < len(text)


def _is_run(text: str) -> bool:
    return any(text in run or text in run[::-1] for run in _RUNS)


def is_guessable(password: str) -> bool:
    lowered = password.casefold()
    core = lowered.strip(_PADDING)
    common = common_passwords()
    if lowered in common or core in common:
        return True
    return any(_is_repeated(text) or _is_run(text) for text in {lowered, core} if text)


def check_password(password: str) -> None:
    """Raises MeteorError `error-password-policy-not-met-*` naming the rule broken."""
    if len(password) < MIN_LENGTH:
        raise _error("minLength", f"The password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise _error("maxLength", f"The password must have at most {MAX_LENGTH} characters")
    if is_guessable(password):
        raise _error(
            "common",
            "The password is too easy to guess: a common password, a repeated string or a "
            "run of keys or letters, even with digits or symbols around it",
        )
