"""Slack's member-list CSV, from the real sample and with every status that matters."""

from __future__ import annotations

from pathlib import Path

from ferry.chat.parsers import REGISTRY
from ferry.chat.parsers.slack_users import SlackUsersImporter
from tests.support.importers import FIXTURES, build_zip, prepare, prepare_fails

HEADER = (
    "username,email,status,billing-active,has-2fa,has-sso,userid,fullname,displayname,"
    "expiration-timestamp\n"
)


def test_registry_names_it_as_rocket_chat_does():
    assert REGISTRY["slack-users"].name == "Slack_Users"


def test_the_real_member_list_imports_every_owner_by_email():
    sink = prepare(SlackUsersImporter(), FIXTURES / "rocketchat" / "slack_export_users.csv")
    assert [u["importIds"] for u in sink.users] == [
        ["user4@email.com.br"],
        ["user5@email.com.br"],
        ["user6@email.com.br"],
    ]
    first = sink.users[0]
    assert first["username"] == "user4.test" and first["name"] == "user4.test"
    assert first["emails"] == ["user4@email.com.br"]
    assert first["roles"] == [] and first["type"] == "user" and first["deleted"] is False
    assert sink.warnings == []


def test_statuses_become_roles_and_flags(tmp_path: Path):
    source = tmp_path / "members.csv"
    source.write_text(
        HEADER
        + "ann,ann@x.io,Admin,1,0,0,U1,Ann Admin,ann.d,\n"
        + "robo,robo@x.io,Bot,0,0,0,U2,,Robo Display,\n"
        + "gone,gone@x.io,Deactivated,0,0,0,U3,,,\n"
        + "nomail,,Member,1,0,0,U4,No Mail,,\n"
        + "short,short@x.io\n"
    )
    sink = prepare(SlackUsersImporter(), source)
    ann, robo, gone = sink.users
    assert ann["roles"] == ["admin"] and ann["name"] == "Ann Admin"
    assert robo["roles"] == ["bot"] and robo["type"] == "bot" and robo["name"] == "Robo Display"
    assert gone["deleted"] is True and gone["name"] == "gone"
    assert sink.warned("members.csv:5:", "no e-mail")
    assert sink.warned("members.csv:6:", "at least username, email and status")


def test_a_list_without_users_is_refused(tmp_path: Path):
    source = tmp_path / "members.csv"
    source.write_text(HEADER)
    message, _ = prepare_fails(SlackUsersImporter(), source)
    assert message == "No users found in the Slack member list."


def test_a_workspace_zip_given_by_mistake_is_refused_clearly(tmp_path: Path):
    source = build_zip(tmp_path / "export.zip", {"users.json": "[]"})
    message, _ = prepare_fails(SlackUsersImporter(), source)
    assert "zip archive" in message and "member list CSV" in message
