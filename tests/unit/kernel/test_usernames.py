"""The username rule equals the spec's, and names from elsewhere are repaired into it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ferry.kernel.usernames import (
    USERNAME_MAX_LENGTH,
    USERNAME_PATTERN,
    is_valid_username,
    username_slug,
)

SPEC = yaml.safe_load((Path(__file__).resolve().parents[3] / "openapi.yaml").read_text())


def test_the_rule_is_the_specs_username_schema():
    schema = SPEC["components"]["schemas"]["Username"]
    assert (schema["pattern"], schema["maxLength"]) == (USERNAME_PATTERN, USERNAME_MAX_LENGTH)


@pytest.mark.parametrize("name", ["bob", "Bob.Smith", "a_b-c", "0", "x" * 64])
def test_valid_usernames(name):
    assert is_valid_username(name)


@pytest.mark.parametrize(
    "name", ["", "bob@example.com", "a b", "x" * 65, "bob\n", "jürgen", "../x", None, 7]
)
def test_invalid_usernames(name):
    assert not is_valid_username(name)


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Jürgen Groß", "jurgen.gross"),
        ("bob@example.com", "bob.example.com"),
        ("../../etc", "etc"),
        ("  Ann -- Lee  ", "ann.lee"),
        ("first_last", "first_last"),
        ("ﬁne", "fine"),
        ("\x1b[31mred", "31mred"),
        ("名前", ""),
        ("a" * 70 + ".b", "a" * 64),
    ],
)
def test_slug_repairs_names_into_the_rule(text, slug):
    assert username_slug(text) == slug
    assert slug == "" or is_valid_username(slug)
