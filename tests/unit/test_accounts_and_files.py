"""Pure logic: password hashing, token hashing, roles, and path splitting."""

import pytest

from ferry.accounts import ROLE_PERMISSIONS, Accounts, PasswordHasher, hash_token
from ferry.files import split_relative
from ferry.kernel.errors import InvalidInput
from storage.users import UserRepository


def test_password_hash_verifies_and_is_salted():
    hasher = PasswordHasher(cost=2**4)
    first, second = hasher.hash("secret-1"), hasher.hash("secret-1")
    assert first != second and first.startswith("scrypt-sha256$16$8$1$")
    assert hasher.verify("secret-1", first) and hasher.verify("secret-1", second)
    assert not hasher.verify("secret-2", first)


@pytest.mark.parametrize("garbage", ["", "plain", "bcrypt$x$y$z$a$b", "scrypt$x$8$1$AA==$AA=="])
def test_malformed_password_hash_never_verifies(garbage):
    assert not PasswordHasher(cost=2**4).verify("anything", garbage)


def test_token_hash_is_stable_and_not_the_token():
    assert hash_token("abc") == hash_token("abc") != "abc"


def test_admin_has_every_permission_a_role_grants():
    every = set().union(*ROLE_PERMISSIONS.values())
    assert Accounts.permissions_of({"roles": ["admin"]}) == every
    assert Accounts.permissions_of({"roles": ["user", "unknown-role"]}) == ROLE_PERMISSIONS["user"]
    assert Accounts.permissions_of({}) == frozenset()


@pytest.mark.parametrize(
    ("raw", "segments"),
    [
        ("", []),
        ("a", ["a"]),
        ("a/b/c", ["a", "b", "c"]),
        ("a//b/", ["a", "b"]),
        ("café/ñ", ["café", "ñ"]),
    ],
)
def test_safe_paths_split_into_segments(raw, segments):
    assert split_relative(raw) == segments


@pytest.mark.parametrize(
    "raw",
    ["..", "a/../b", "./a", "/etc", "a\\b", "a\x00b", "a\nb", "a\x7fb", "x" * 256, "a/" * 3000],
)
def test_unsafe_paths_are_refused(raw):
    with pytest.raises(InvalidInput):
        split_relative(raw)


@pytest.mark.parametrize("username", ["", "bob smith", "../../x", "a" * 65, "ａｄｍｉｎ"])
def test_a_username_outside_the_rule_is_refused_on_every_path(username, store):
    accounts = Accounts(UserRepository(store), PasswordHasher(cost=2**4))
    with pytest.raises(InvalidInput):
        accounts.create_user(username, email=None, name=None, password=None)
    assert accounts.users.count() == 0
