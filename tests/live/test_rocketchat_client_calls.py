"""Every call rocketchat_API (unmodified) offers for users, channels, groups, direct
messages, rooms, roles, subscriptions and chat, made against a live `ferry serve` holding
an imported workspace, as the admin and as an imported plain user.

The calls are enumerated from the library; EXPECTED names each one's outcome, so a call
the library adds, or an answer that changes, fails the test. Ferry serves the reads
around an import and user administration; every other call reaches a path Ferry does not
serve, which answers Rocket.Chat's own 404 body.
"""

from __future__ import annotations

import inspect

import pytest
import requests
from rocketchat_API.APIExceptions.RocketExceptions import (
    RocketApiException,
    RocketBadStatusCodeException,
    RocketMissingParamException,
)
from rocketchat_API.rocketchat import RocketChat

from tests.api.test_import_api import csv_export
from tests.live.test_rocketchat_client import (  # noqa: F401  (the live server fixture)
    ADMIN,
    MEMBER_PASSWORD,
    import_csv,
    server,
)

pytestmark = pytest.mark.live
PREFIXES = ("users_", "channels_", "groups_", "im_", "dm_", "rooms_", "roles_", "chat_")
PREFIXES += ("subscriptions_",)

OK = "ok"
NOT_SERVED = (404, "Resource not found")
FORBIDDEN = (
    403,
    "User does not have the permissions required for this action [error-unauthorized]",
)

LIBRARY_REFUSES = (None, "RocketMissingParamException")

# (as the imported plain user, as the admin) for each call.
EXPECTED = {
    "channels_add_all": (NOT_SERVED, NOT_SERVED),
    "channels_add_leader": (NOT_SERVED, NOT_SERVED),
    "channels_add_moderator": (NOT_SERVED, NOT_SERVED),
    "channels_add_owner": (NOT_SERVED, NOT_SERVED),
    "channels_archive": (NOT_SERVED, NOT_SERVED),
    "channels_close": (NOT_SERVED, NOT_SERVED),
    "channels_counters": (NOT_SERVED, NOT_SERVED),
    "channels_create": (NOT_SERVED, NOT_SERVED),
    "channels_delete": (NOT_SERVED, NOT_SERVED),
    "channels_files": (NOT_SERVED, NOT_SERVED),
    "channels_get_all_user_mentions_by_channel": (NOT_SERVED, NOT_SERVED),
    "channels_get_integrations": (NOT_SERVED, NOT_SERVED),
    "channels_history": (OK, OK),
    "channels_info": (OK, OK),
    "channels_invite": (NOT_SERVED, NOT_SERVED),
    "channels_join": (NOT_SERVED, NOT_SERVED),
    "channels_kick": (NOT_SERVED, NOT_SERVED),
    "channels_leave": (NOT_SERVED, NOT_SERVED),
    "channels_list": (OK, OK),
    "channels_list_joined": (NOT_SERVED, NOT_SERVED),
    "channels_members": (OK, OK),
    "channels_moderators": (NOT_SERVED, NOT_SERVED),
    "channels_online": (NOT_SERVED, NOT_SERVED),
    "channels_open": (NOT_SERVED, NOT_SERVED),
    "channels_remove_leader": (NOT_SERVED, NOT_SERVED),
    "channels_remove_moderator": (NOT_SERVED, NOT_SERVED),
    "channels_remove_owner": (NOT_SERVED, NOT_SERVED),
    "channels_rename": (NOT_SERVED, NOT_SERVED),
    "channels_roles": (OK, OK),
    "channels_set_announcement": (NOT_SERVED, NOT_SERVED),
    "channels_set_custom_fields": (NOT_SERVED, NOT_SERVED),
    "channels_set_default": (NOT_SERVED, NOT_SERVED),
    "channels_set_description": (NOT_SERVED, NOT_SERVED),
    "channels_set_join_code": (NOT_SERVED, NOT_SERVED),
    "channels_set_read_only": (NOT_SERVED, NOT_SERVED),
    "channels_set_topic": (NOT_SERVED, NOT_SERVED),
    "channels_set_type": (NOT_SERVED, NOT_SERVED),
    "channels_unarchive": (NOT_SERVED, NOT_SERVED),
    "chat_delete": (NOT_SERVED, NOT_SERVED),
    "chat_follow_message": (NOT_SERVED, NOT_SERVED),
    "chat_get_deleted_messages": (NOT_SERVED, NOT_SERVED),
    "chat_get_discussions": (NOT_SERVED, NOT_SERVED),
    "chat_get_mentioned_messages": (NOT_SERVED, NOT_SERVED),
    "chat_get_message": (OK, OK),
    "chat_get_message_read_receipts": (NOT_SERVED, NOT_SERVED),
    "chat_get_pinned_messages": (NOT_SERVED, NOT_SERVED),
    "chat_get_starred_messages": (NOT_SERVED, NOT_SERVED),
    "chat_get_thread_messages": (OK, OK),
    "chat_get_threads_list": (OK, OK),
    "chat_get_url_preview": (NOT_SERVED, NOT_SERVED),
    "chat_ignore_user": (NOT_SERVED, NOT_SERVED),
    "chat_pin_message": (NOT_SERVED, NOT_SERVED),
    "chat_post_message": (NOT_SERVED, NOT_SERVED),
    "chat_react": (NOT_SERVED, NOT_SERVED),
    "chat_report_message": (NOT_SERVED, NOT_SERVED),
    "chat_search": (NOT_SERVED, NOT_SERVED),
    # The library refuses this one itself: it needs a `rid` inside `message`.
    "chat_send_message": (LIBRARY_REFUSES, LIBRARY_REFUSES),
    "chat_star_message": (NOT_SERVED, NOT_SERVED),
    "chat_sync_messages": (NOT_SERVED, NOT_SERVED),
    "chat_sync_thread_list": (NOT_SERVED, NOT_SERVED),
    "chat_sync_thread_messages": (NOT_SERVED, NOT_SERVED),
    "chat_unfollow_message": (NOT_SERVED, NOT_SERVED),
    "chat_unpin_message": (NOT_SERVED, NOT_SERVED),
    "chat_unstar_message": (NOT_SERVED, NOT_SERVED),
    "chat_update": (NOT_SERVED, NOT_SERVED),
    "dm_close": (NOT_SERVED, NOT_SERVED),
    "dm_counters": (NOT_SERVED, NOT_SERVED),
    "dm_create": (NOT_SERVED, NOT_SERVED),
    "dm_create_multiple": (NOT_SERVED, NOT_SERVED),
    "dm_delete": (NOT_SERVED, NOT_SERVED),
    "dm_files": (NOT_SERVED, NOT_SERVED),
    "dm_history": (OK, OK),
    "dm_list": (OK, OK),
    "dm_list_everyone": (FORBIDDEN, OK),
    "dm_members": (OK, OK),
    "dm_messages": (NOT_SERVED, NOT_SERVED),
    "dm_messages_others": (NOT_SERVED, NOT_SERVED),
    "dm_open": (NOT_SERVED, NOT_SERVED),
    "dm_set_topic": (NOT_SERVED, NOT_SERVED),
    "groups_add_leader": (NOT_SERVED, NOT_SERVED),
    "groups_add_moderator": (NOT_SERVED, NOT_SERVED),
    "groups_add_owner": (NOT_SERVED, NOT_SERVED),
    "groups_archive": (NOT_SERVED, NOT_SERVED),
    "groups_close": (NOT_SERVED, NOT_SERVED),
    "groups_convert_to_team": (NOT_SERVED, NOT_SERVED),
    "groups_create": (NOT_SERVED, NOT_SERVED),
    "groups_delete": (NOT_SERVED, NOT_SERVED),
    "groups_files": (NOT_SERVED, NOT_SERVED),
    "groups_get_integrations": (NOT_SERVED, NOT_SERVED),
    "groups_history": (OK, OK),
    "groups_info": (OK, OK),
    "groups_invite": (NOT_SERVED, NOT_SERVED),
    "groups_kick": (NOT_SERVED, NOT_SERVED),
    "groups_leave": (NOT_SERVED, NOT_SERVED),
    "groups_list": (OK, OK),
    "groups_list_all": (FORBIDDEN, OK),
    "groups_members": (OK, OK),
    "groups_moderators": (NOT_SERVED, NOT_SERVED),
    "groups_online": (NOT_SERVED, NOT_SERVED),
    "groups_open": (NOT_SERVED, NOT_SERVED),
    "groups_remove_leader": (NOT_SERVED, NOT_SERVED),
    "groups_remove_moderator": (NOT_SERVED, NOT_SERVED),
    "groups_remove_owner": (NOT_SERVED, NOT_SERVED),
    "groups_rename": (NOT_SERVED, NOT_SERVED),
    "groups_roles": (OK, OK),
    "groups_set_announcement": (NOT_SERVED, NOT_SERVED),
    "groups_set_custom_fields": (NOT_SERVED, NOT_SERVED),
    "groups_set_description": (NOT_SERVED, NOT_SERVED),
    "groups_set_encrypted": (NOT_SERVED, NOT_SERVED),
    "groups_set_read_only": (NOT_SERVED, NOT_SERVED),
    "groups_set_topic": (NOT_SERVED, NOT_SERVED),
    "groups_set_type": (NOT_SERVED, NOT_SERVED),
    "groups_unarchive": (NOT_SERVED, NOT_SERVED),
    "roles_add_user_to_role": (FORBIDDEN, OK),
    "roles_create": (NOT_SERVED, NOT_SERVED),
    "roles_delete": (NOT_SERVED, NOT_SERVED),
    "roles_get_users_in_public_roles": (NOT_SERVED, NOT_SERVED),
    "roles_get_users_in_role": (FORBIDDEN, OK),
    "roles_list": (OK, OK),
    "roles_remove_user_from_role": (FORBIDDEN, OK),
    "roles_sync": (NOT_SERVED, NOT_SERVED),
    "rooms_admin_rooms": (NOT_SERVED, NOT_SERVED),
    "rooms_clean_history": (NOT_SERVED, NOT_SERVED),
    "rooms_create_discussion": (NOT_SERVED, NOT_SERVED),
    "rooms_favorite": (NOT_SERVED, NOT_SERVED),
    "rooms_get": (OK, OK),
    "rooms_info": (OK, OK),
    "rooms_leave": (NOT_SERVED, NOT_SERVED),
    "rooms_media": (NOT_SERVED, NOT_SERVED),
    "rooms_media_confirm": (NOT_SERVED, NOT_SERVED),
    "subscriptions_get": (OK, OK),
    "subscriptions_get_one": (NOT_SERVED, NOT_SERVED),
    "subscriptions_read": (NOT_SERVED, NOT_SERVED),
    "subscriptions_unread": (NOT_SERVED, NOT_SERVED),
    # The username given is the imported billy.bob's.
    "users_create": (FORBIDDEN, (400, "error-field-unavailable")),
    "users_create_token": (NOT_SERVED, NOT_SERVED),
    "users_delete": (NOT_SERVED, NOT_SERVED),
    "users_forgot_password": (NOT_SERVED, NOT_SERVED),
    "users_get_avatar": (OK, OK),
    "users_get_preferences": (NOT_SERVED, NOT_SERVED),
    "users_get_presence": (OK, OK),
    "users_info": (FORBIDDEN, OK),
    "users_list": (FORBIDDEN, OK),
    "users_register": (NOT_SERVED, NOT_SERVED),
    "users_reset_avatar": (NOT_SERVED, NOT_SERVED),
    "users_set_active_status": (NOT_SERVED, NOT_SERVED),
    "users_set_avatar": (NOT_SERVED, NOT_SERVED),
    "users_set_preferences": (NOT_SERVED, NOT_SERVED),
    "users_set_status": (NOT_SERVED, NOT_SERVED),
    # Called with no field to change.
    "users_update": (FORBIDDEN, (400, "error-invalid-params")),
}


def library_calls() -> list[str]:
    return sorted(name for name in dir(RocketChat) if name.startswith(PREFIXES))


def _arguments(name: str, ids: dict, upload_path) -> dict:
    """A value for each parameter the call takes, by its name."""
    room = ids["c"]
    if name.startswith("groups_"):
        room = ids["p"]
    elif name.startswith(("dm_", "im_")):
        room = ids["d"]
    moment = "2020-01-01T00:00:00.000Z"
    values = {
        "room_id": room,
        "rid": room,
        "_id": room,
        "prid": room,
        "user_id": ids["user"],
        "username": "billy.bob",
        "usernames": ["billy.bob"],
        "msg_id": ids["message"],
        "message_id": ids["message"],
        "mid": ids["message"],
        "thread_msg_id": ids["message"],
        "tmid": ids["message"],
        "name": "ferry-new-room",
        "t_name": "ferry-new-room",
        "text": "x",
        "message": "x",
        "description": "x",
        "topic": "x",
        "announcement": "x",
        "search_text": "x",
        "role": "user",
        "role_id": "user",
        "email": "new@example.test",
        "password": "a-long-test-passphrase-9",
        "since": moment,
        "latest": moment,
        "oldest": moment,
        "last_update": moment,
        "updated_since": moment,
        "default": True,
        "read_only": True,
        "encrypted": True,
        "active_status": True,
        "a_type": "c",
        "custom_fields": {},
        "data": {},
        "url": "http://127.0.0.1:9/x",
        "avatar_url": "http://127.0.0.1:9/x",
        "file": str(upload_path),
        "file_id": "x",
        "join_code": "x",
        "secret": "x",
    }
    parameters = inspect.signature(getattr(RocketChat, name)).parameters
    return {key: values[key] for key in parameters if key in values}


def outcome(client: RocketChat, name: str, arguments: dict):
    try:
        result = getattr(client, name)(**arguments)
        if inspect.isgenerator(result):
            list(result)
    except RocketApiException as refused:
        error = refused.response_json.get("errorType") or refused.error
        return (refused.status_code, error)
    except (RocketBadStatusCodeException, RocketMissingParamException) as refused:
        # The library refuses before sending (a missing parameter) or cannot read the answer.
        return (getattr(refused, "status_code", None), type(refused).__name__)
    return OK


def _ids(base: str, admin: RocketChat) -> dict:
    channel = next(iter(admin.channels_list()))
    group = next(iter(admin.groups_list_all()), None)
    direct = next(iter(admin.dm_list_everyone()), None)
    # The fixture's messages are in its private group (the plain user's own).
    history = list(admin.channels_history(channel["_id"]))
    if group is not None and not history:
        history = list(admin.groups_history(group["_id"]))
    return {
        "c": channel["_id"],
        "p": (group or channel)["_id"],
        "d": (direct or channel)["_id"],
        "user": admin.users_info(username="billy.bob")["user"]["_id"],
        "message": history[0]["_id"] if history else "missing",
    }


def test_every_call_answers_as_expected(server, tmp_path):  # noqa: F811
    import_csv(server, csv_export(tmp_path))
    admin = RocketChat("admin", ADMIN["FERRY_ADMIN_PASSWORD"], server_url=server)
    ids = _ids(server, admin)
    assert admin.users_update(ids["user"], password=MEMBER_PASSWORD)["success"]
    member = RocketChat("billy.bob", MEMBER_PASSWORD, server_url=server)
    upload = tmp_path / "upload.txt"
    upload.write_text("x")
    observed = {}
    for name in library_calls():
        arguments = _arguments(name, ids, upload)
        observed[name] = (outcome(member, name, arguments), outcome(admin, name, arguments))
    assert sorted(EXPECTED) == library_calls(), "a call the table does not name"
    differences = {
        name: {"expected": EXPECTED[name], "observed": observed[name]}
        for name in EXPECTED
        if observed[name] != EXPECTED[name]
    }
    assert not differences
    assert requests.get(f"{server}/api/info").json()["success"] is True
