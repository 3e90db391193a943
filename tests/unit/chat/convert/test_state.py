"""What startImport's selection lets through."""

from __future__ import annotations

from ferry.chat.convert.state import Selection
from tests.support.staged_import import stage_slack_like


def test_direct_messages_entry_selects_every_dm(world):
    stage_slack_like(world.staging)
    report = world.run(
        selection=Selection.from_input(
            {"users": {"all": True}, "channels": {"list": ["__directMessages__"]}}
        )
    )
    assert (report.rooms_created, report.messages_imported) == (1, 1)
    assert world.workspace.rooms("d")[1] == 1


def test_rocket_chat_6_selection_arrays_are_understood():
    selection = Selection.from_input(
        {
            "users": [{"user_id": "U1", "do_import": True}, {"user_id": "U2", "do_import": False}],
            "channels": [{"channel_id": "__directMessages__", "do_import": True}],
        }
    )
    assert selection.wants_user(["U1"]) and not selection.wants_user(["U2"])
    assert selection.wants_channel("d", ["D1"]) and not selection.wants_channel("c", ["C1"])
