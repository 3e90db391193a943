"""Imported users matched to the accounts already on the server, which they never change."""

from __future__ import annotations

import pytest

from ferry.kernel.usernames import is_valid_username
from tests.support.staged_import import ADMIN, stage_slack_like

PLAIN = {
    **ADMIN,
    "_id": "local2",
    "username": "Dora",
    "name": "Dora Local",
    "emails": [{"address": "dora@example.test", "verified": True}],
    "roles": ["user"],
    "importIds": [],
    "bio": "mine",
}


def stage(world, *users, op="op"):
    with world.staging.writer(op) as sink:
        for user in users:
            sink.add_user({"importIds": [], "emails": [], "type": "user", **user})


def test_an_existing_admin_matched_by_email_keeps_everything_but_gains_the_import_id(world):
    stage_slack_like(world.staging)

    report = world.run()

    boss = world.users.get("admin1")
    assert {**boss, "importIds": []} == ADMIN and boss["importIds"] == ["U3"]
    assert report.users_matched == 1
    # Same username (in another case), same email, no role beyond user: nothing to report.
    assert report.warning_samples == []


def test_a_match_by_username_changes_nothing_and_says_what_was_left(world):
    world.users.insert(dict(PLAIN))
    stage(
        world,
        {
            "importIds": ["U9"],
            "username": "dora",
            "name": "Dora Export",
            "emails": ["dora@new.example"],
            "roles": ["admin", "user"],
            "deleted": True,
            "bio": "theirs",
            "avatarUrl": "https://img.example/d.png",
            "type": "bot",
        },
    )

    report = world.run()

    dora = world.users.get("local2")
    assert {**dora, "importIds": []} == PLAIN and dora["importIds"] == ["U9"]
    assert (report.users_created, report.users_matched) == (0, 1)
    assert report.warning_samples == [
        "User 'dora' matched the existing account 'Dora' by username; its roles, active "
        "status, name and emails were left as they are (an import never changes "
        "an account that already exists)."
    ]


def test_a_deleted_row_never_deactivates_an_existing_admin(world):
    stage(
        world,
        {"importIds": ["x"], "username": "evil", "emails": ["BOSS@example.com"], "deleted": True},
    )

    report = world.run()

    assert world.users.get("admin1")["active"] is True
    assert "by email; its active status and username were" in report.warning_samples[0]


def test_messages_of_a_matched_user_attach_to_the_existing_account(world):
    world.users.insert(dict(PLAIN))
    stage(world, {"importIds": ["U9"], "username": "DORA"})
    with world.staging.writer("op", append=True) as sink:
        sink.add_channel({"importIds": ["C1"], "name": "general", "t": "c", "users": ["U9"]})
        sink.add_message({"_id": "m1", "rid": "C1", "u": {"_id": "U9"}, "msg": "hi", "ts": 1.0})

    world.run()

    (message,) = world.history("general")
    assert message["u"] == {"_id": "local2", "username": "Dora", "name": "Dora Local"}


def test_a_created_user_never_gets_a_role_an_import_may_not_grant(world):
    stage(
        world,
        {"importIds": ["U1"], "username": "mallory", "roles": ["admin"], "deleted": True},
        {"importIds": ["U2"], "username": "robo", "roles": ["bot", "admin"], "type": "bot"},
    )

    report = world.run()

    mallory = world.users.by_username("mallory")
    assert (mallory["roles"], mallory["active"]) == (["user"], False)
    assert world.users.by_username("robo")["roles"] == ["bot"]
    assert report.warning_samples == [
        "User 'mallory' was created without the role(s) 'admin' the export gives it; an "
        "import never grants 'admin' (use roles.addUserToRole).",
        "User 'robo' was created without the role(s) 'admin' the export gives it; an "
        "import never grants 'admin' (use roles.addUserToRole).",
    ]


def test_a_username_equal_to_someones_email_gets_a_repaired_name(world):
    stage(
        world, {"importIds": ["U1"], "username": "boss@example.com", "emails": ["x@example.test"]}
    )

    report = world.run()

    assert world.users.by_email("boss@example.com")["_id"] == "admin1"
    created = world.users.by_email("x@example.test")
    assert created["username"] == "boss.example.com"
    assert report.warning_samples[0].startswith(
        "User 'boss@example.com' was created as 'boss.example.com': a username is letters"
    )


def test_a_valid_username_that_is_another_accounts_email_is_not_taken(world):
    # Emails stored by an older import need not contain an @.
    world.users.insert(
        {**PLAIN, "username": "zed", "emails": [{"address": "carol", "verified": False}]}
    )
    stage(world, {"importIds": ["U1"], "username": "carol", "emails": ["c@example.test"]})

    world.run()

    assert world.users.by_email("carol")["_id"] == "local2"
    assert world.users.by_email("c@example.test")["username"] == "carol-1"


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("all", "all-1"),
        ("HERE", "here-1"),
        ("rocket.cat", "rocket.cat-1"),
        ("../../etc/passwd", "etc.passwd"),
        ("bob smith", "bob.smith"),
        ("Jürgen Groß", "jurgen.gross"),
        ("ａｄｍｉｎ", "admin-1"),  # full-width letters fold to an existing username
        ("boss\u200b", "boss-1"),
        ("a\x00b\nc", "a.b.c"),
        ("\u202eevil", "evil"),
        ("名前", "new"),  # nothing survives: the email names it
        ("x" * 128, "x" * 64),
    ],
)
def test_imported_usernames_obey_the_username_rule(world, wanted, expected):
    world.users.insert({**PLAIN, "_id": "local3", "username": "admin", "emails": []})
    stage(world, {"importIds": ["U1"], "username": wanted, "emails": ["new@example.test"]})

    world.run()

    created = world.users.by_email("new@example.test")
    assert created["username"] == expected and is_valid_username(created["username"])


def test_repaired_usernames_are_unique_within_one_import_and_across_batches(world):
    rows = 2500
    stage(
        world,
        *(
            {"importIds": [f"U{n}"], "username": "bob smith", "emails": [f"b{n}@x.test"]}
            for n in range(rows)
        ),
    )

    world.run(batch_size=1000)

    names = [world.users.by_email(f"b{n}@x.test")["username"] for n in range(rows)]
    assert names[:3] == ["bob.smith", "bob.smith-1", "bob.smith-2"]
    assert len(set(names)) == rows and names[-1] == f"bob.smith-{rows - 1}"


def test_an_import_id_another_account_holds_is_not_moved(world):
    world.users.insert({**PLAIN, "importIds": ["U1"]})
    stage(
        world,
        {"importIds": ["U1"], "username": "x", "emails": ["boss@example.com"]},
        {"importIds": ["U2"], "username": "newbie"},
        {"importIds": ["U2"], "emails": ["Boss@example.com"]},
    )

    world.run()

    assert world.users.get("admin1")["importIds"] == []
    assert world.users.id_for_import_id("U1") == "local2"
    assert world.users.id_for_import_id("U2") == world.users.by_username("newbie")["_id"]


def test_malformed_fields_are_dropped_not_stored(world):
    stage(
        world,
        {
            "importIds": ["U1", 7, ""],
            "username": 123,
            "name": {"first": "x"},
            "emails": ["ok@example.test", ["no"], "y" * 300],
            "statusText": ["no"],
            "utcOffset": "2",
            "roles": [None, "user"],
        },
    )

    report = world.run()

    user = world.users.by_email("ok@example.test")
    assert report.errors == 0 and user["importIds"] == ["U1"]
    assert (user["username"], user["name"], user["statusText"], user["utcOffset"]) == (
        "ok",
        "ok",
        "",
        0,
    )
    assert [e["address"] for e in user["emails"]] == ["ok@example.test"]
