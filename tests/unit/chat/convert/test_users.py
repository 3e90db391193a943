"""Imported users matched to the ones already on the server."""

from __future__ import annotations

from tests.support.staged_import import ADMIN, stage_slack_like


def test_an_existing_admin_matched_by_email_keeps_admin(world):
    stage_slack_like(world.staging)
    world.run()
    boss = world.users.get("admin1")
    assert "admin" in boss["roles"] and "user" in boss["roles"]
    assert boss["active"] and boss["password"] == "x" and boss["importIds"] == ["U3"]


def test_existing_user_matched_by_username_case_insensitively(world):
    world.users.insert(
        {
            **ADMIN,
            "_id": "local2",
            "username": "Dora",
            "roles": ["user"],
            "emails": [],
            "importIds": [],
        }
    )
    with world.staging.writer("op") as sink:
        sink.add_user(
            {
                "importIds": ["U9"],
                "username": "dora",
                "emails": ["dora@new.example"],
                "type": "user",
            }
        )

    report = world.run()

    assert (report.users_created, report.users_updated) == (0, 1)
    dora = world.users.get("local2")
    assert dora["importIds"] == ["U9"]
    assert [e["address"] for e in dora["emails"]] == ["dora@new.example"]
