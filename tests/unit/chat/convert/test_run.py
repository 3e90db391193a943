"""Staging to workspace: what an admin sees after startImport."""

from __future__ import annotations

import pytest

from ferry.chat.convert.state import ImportCancelled, Selection
from tests.support.staged_import import stage_slack_like


def test_full_import_creates_users_rooms_and_messages(world):
    stage_slack_like(world.staging)

    report = world.run()

    assert (report.users_created, report.users_matched) == (3, 1)
    assert (report.rooms_created, report.messages_imported, report.errors) == (3, 6, 0)
    ann = world.users.by_username("ann")
    assert ann["active"] and "password" not in ann and ann["importIds"] == ["U1"]
    assert ann["_pendingAvatarUrl"] == "https://img.example/ann.png"
    assert world.users.by_username("ben")["active"] is False
    bot = world.users.by_email("cy@example.com")
    assert (bot["username"], bot["type"], bot["roles"]) == ("cy.bot", "bot", ["bot"])

    general = world.workspace.room_by_name("general")
    assert (general["t"], general["topic"], general["description"]) == ("c", "hello", "all of us")
    assert general["u"]["username"] == "ann" and general["usersCount"] == 2
    assert general["msgs"] == 4 and general["lastMessage"]["_id"] == "slack-C1-1"
    secret = world.workspace.room_by_name("secret")
    assert secret["archived"] and secret["u"]["username"] == "boss"  # creator fallback
    dm = world.workspace.direct_room_by_members([ann["_id"], world.users.by_username("ben")["_id"]])
    assert dm["usernames"] == ["ann", "ben"] and dm["_id"] == "".join(sorted(dm["uids"]))


def test_importing_the_same_staging_twice_creates_nothing_new(world):
    stage_slack_like(world.staging)
    world.run()
    counts = (
        world.users.count(),
        world.workspace.room_count(),
        world.workspace.message_count(world.workspace.room_by_name("general")["_id"]),
    )

    again = world.run()

    assert (again.users_created, again.rooms_created) == (0, 0)
    assert (
        world.users.count(),
        world.workspace.room_count(),
        world.workspace.message_count(world.workspace.room_by_name("general")["_id"]),
    ) == counts


def test_selection_is_honoured_and_messages_of_left_out_rooms_are_skipped(world):
    stage_slack_like(world.staging)
    selection = Selection.from_input(
        {"users": {"list": ["U1", "U2"]}, "channels": {"all": False, "list": ["C1"]}}
    )

    report = world.run(selection=selection)

    assert world.users.by_email("cy@example.com") is None
    assert (report.users_created, report.users_skipped) == (2, 2)
    assert world.workspace.room_by_name("secret") is None
    assert (report.rooms_created, report.rooms_skipped) == (1, 2)
    assert (report.messages_imported, report.messages_skipped, report.errors) == (4, 2, 0)


def test_progress_reports_rocket_chat_steps(world):
    stage_slack_like(world.staging)
    seen = []
    world.run(progress=lambda *args: seen.append(args))

    steps = list(dict.fromkeys(step for step, *_ in seen))
    assert steps == [
        "importer_importing_users",
        "importer_importing_channels",
        "importer_importing_messages",
        "importer_finishing",
    ]
    assert seen[-1] == ("importer_finishing", 13, 13, 0)


def test_cancel_stops_cleanly_and_a_later_run_completes(world):
    stage_slack_like(world.staging)
    answers = iter([True, True, True, True, False])

    with pytest.raises(ImportCancelled):
        world.run(should_continue=lambda: next(answers), batch_size=2)
    general = world.workspace.room_by_name("general")
    stored = world.workspace.message_count(general["_id"], visible_only=False)
    assert 0 < stored < 4
    assert world.workspace.room(general["_id"])["msgs"] == world.workspace.message_count(
        general["_id"]
    )

    world.run()
    assert world.workspace.message_count(general["_id"], visible_only=False) == 4
