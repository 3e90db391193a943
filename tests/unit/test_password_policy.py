"""The password rule: long enough, and no common password however it is dressed up."""

import secrets

import pytest

from ferry.kernel.errors import MeteorError
from ferry.password_policy import check_password, common_passwords

WEAK = {
    "": "minLength",
    "a": "minLength",
    "12345678": "minLength",
    "correcthors": "minLength",
    "x" * 1025: "maxLength",
    "passwordpassword": "common",
    "Password2024!": "common",
    "qwerty123456": "common",
    "  iloveyou!!!  ": "common",
    "2024-sunshine-2024": "common",
    "abcabcabcabc": "common",
    "aaaaaaaaaaaa": "common",
    "123456789012": "common",
    "890123456789": "common",
    "ZYXWVUTSRQPO": "common",
    "qwertyuiopasdf": "common",
    "1qaz2wsx3edc": "common",
    "Trustno1Trustno1": "common",
}


@pytest.mark.parametrize(("password", "rule"), WEAK.items(), ids=range(len(WEAK)))
def test_weak_passwords_are_refused_naming_the_rule(password, rule):
    with pytest.raises(MeteorError) as refused:
        check_password(password)
    assert refused.value.error_type == f"error-password-policy-not-met-{rule}"
    if len(password) >= 3:
        assert password not in refused.value.message


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "a-long-passphrase",
        "Tr4vel lamp oboe",
        "sunshine-over-the-harbour",
        "mauve-kettle-42",
        "é" * 6 + "ß" * 6,
    ],
)
def test_reasonable_passwords_pass(password):
    check_password(password)


def test_generated_admin_passwords_always_pass():
    for _ in range(2000):
        check_password(secrets.token_urlsafe(18))


def test_the_built_in_list_is_lowercase_and_holds_the_usual_suspects():
    common = common_passwords()
    assert len(common) > 900
    assert {"password", "123456", "qwerty", "iloveyou", "trustno1"} <= common
    assert all(entry == entry.casefold() and not entry.startswith("#") for entry in common)
