"""Rocket.Chat-shaped read results over an imported workspace."""

from __future__ import annotations

import pytest

from ferry.chat.list_query import InvalidListFilter
from ferry.chat.reads import (
    Reader,
    RoomNotFound,
    RoomParamMissing,
    WorkspaceQueries,
    history_bounds,
)
from ferry.kernel.errors import MeteorError
from storage.store import Store
from storage.workspace import WorkspaceStore

# 2024-01-01T00:00:00.000Z in microseconds
BASE = 1_704_067_200 * 1_000_000
MS = 1000

# Readers as the handlers build them: a plain user who is in no room, the members, and
# an admin (view-room-administration reads every room).
OUTSIDER = Reader("u9", frozenset({"view-c-room"}))
ANN = Reader("u1", frozenset({"view-c-room"}))
BEN = Reader("u2", frozenset({"view-c-room"}))
ADMIN = Reader("admin", frozenset({"view-c-room", "view-room-administration"}))


def _iso(micros):
    seconds, rest = divmod(micros - BASE, 1_000_000)
    return f"2024-01-01T00:00:{seconds:02d}.{rest // 1000:03d}Z"


@pytest.fixture
def queries(tmp_path):
    store = Store(tmp_path, fsync=False)
    ws = WorkspaceStore(store)
    ws.insert_rooms(
        [
            {
                "_id": "C1",
                "t": "c",
                "name": "general",
                "fname": "general",
                "msgs": 0,
                "usersCount": 2,
                "u": {"_id": "u1", "username": "ann"},
                "ts": _iso(BASE),
                "ro": False,
                "default": False,
                "sysMes": True,
                "archived": False,
                "_updatedAt": _iso(BASE),
                "importIds": ["SC1"],
            },
            {"_id": "C2", "t": "c", "name": "announcements"},
            {"_id": "P1", "t": "p", "name": "secret"},
            {"_id": "D1", "t": "d", "uids": ["u1", "u2"], "usernames": ["ann", "ben"]},
        ]
    )
    # One message per millisecond step; m3 and m4 share a millisecond.
    sorts = {
        "m1": BASE + 1 * MS,
        "m2": BASE + 2 * MS,
        "m3": BASE + 3 * MS + 100,
        "m4": BASE + 3 * MS + 200,
        "m5": BASE + 5 * MS,
    }
    ws.upsert_messages(
        [
            {
                "_id": mid,
                "rid": "C1",
                "msg": mid,
                "ts": _iso(sort),
                "_sort": sort,
                "u": {"_id": "u1", "username": "ann", "name": "Ann"},
                "mentions": [],
                "channels": [],
                "_updatedAt": _iso(BASE),
            }
            for mid, sort in sorts.items()
        ]
    )
    ws.upsert_messages(
        [
            {
                "_id": "r1",
                "rid": "C1",
                "msg": "reply",
                "ts": _iso(BASE + 6 * MS),
                "_sort": BASE + 6 * MS,
                "tmid": "m1",
                "u": {"_id": "u1", "username": "ann"},
            },
            {
                "_id": "f1",
                "rid": "C1",
                "msg": "",
                "ts": _iso(BASE + 7 * MS),
                "_sort": BASE + 7 * MS,
                "u": {"_id": "u1", "username": "ann"},
                "_importFile": {"downloadUrl": "https://files.example/x?t=secret", "id": "F"},
            },
            {
                "_id": "d1",
                "rid": "D1",
                "msg": "dm",
                "ts": _iso(BASE),
                "_sort": BASE,
                "u": {"_id": "u2", "username": "ben"},
            },
        ]
    )
    ws.refresh_room_stats(["C1", "D1"], _iso(BASE))
    ws.set_members("P1", ["u1"])
    ws.set_members("D1", ["u1", "u2"])
    yield WorkspaceQueries(ws)
    store.close()


def _ids(result):
    return [m["_id"] for m in result["messages"]]


def test_lists_have_rocket_chat_paging_fields(queries):
    result = queries.channels_list(offset=0, count=1)
    assert [r["name"] for r in result["channels"]] == ["announcements"]
    assert (result["count"], result["offset"], result["total"]) == (1, 0, 2)
    assert [r["_id"] for r in queries.groups_list_all()["groups"]] == ["P1"]
    assert [r["_id"] for r in queries.im_list_everyone()["ims"]] == ["D1"]


def test_channel_info_by_id_or_name(queries):
    channel = queries.channel_info(OUTSIDER, room_id="C1")["channel"]
    for field in (
        "_id",
        "name",
        "fname",
        "t",
        "msgs",
        "usersCount",
        "u",
        "ts",
        "ro",
        "default",
        "sysMes",
        "archived",
        "_updatedAt",
        "lastMessage",
    ):
        assert field in channel
    assert channel["msgs"] == 7  # thread replies count, as in Rocket.Chat
    assert channel["lastMessage"]["_id"] == "f1"
    assert "_sort" not in channel["lastMessage"] and "_importFile" not in channel["lastMessage"]
    assert queries.channel_info(OUTSIDER, room_name="general")["channel"]["_id"] == "C1"


def test_unknown_or_wrong_type_room_is_rocket_chats_not_found_error(queries):
    with pytest.raises(RoomNotFound) as missing:
        queries.channel_info(OUTSIDER, room_id="nope")
    assert missing.value.error_type == "error-room-not-found"
    assert missing.value.message == (
        'The required "roomId" or "roomName" param provided does not match any channel '
        "[error-room-not-found]"
    )
    with pytest.raises(RoomNotFound, match="any group"):
        queries.group_history(ADMIN, room_id="C1")
    with pytest.raises(RoomParamMissing):
        queries.channel_history(OUTSIDER)


def test_history_is_newest_first_and_hides_thread_replies_by_default(queries):
    assert _ids(queries.channel_history(OUTSIDER, "C1")) == ["f1", "m5", "m4", "m3", "m2", "m1"]
    assert _ids(queries.channel_history(OUTSIDER, "C1", show_thread_messages=True))[:2] == [
        "f1",
        "r1",
    ]


def test_history_sorts_by_ts_either_way_and_refuses_other_sorts(queries):
    oldest_first = queries.channel_history(
        OUTSIDER, "C1", sort='{"ts": 1}', offset=1, count=2, with_totals=True
    )
    assert _ids(oldest_first) == ["m2", "m3"]
    assert oldest_first["total"] == 6
    assert _ids(queries.channel_history(OUTSIDER, "C1", sort='{"ts": -1}')) == _ids(
        queries.channel_history(OUTSIDER, "C1")
    )
    for refused in ('{"msg": 1}', '{"ts": 2}', "ts", "[]"):
        with pytest.raises(InvalidListFilter) as invalid:
            queries.channel_history(OUTSIDER, "C1", sort=refused)
        assert invalid.value.error_type == "error-invalid-sort"


def test_history_paging_with_totals(queries):
    result = queries.channel_history(OUTSIDER, "C1", offset=1, count=2, with_totals=True)
    assert _ids(result) == ["m5", "m4"]
    assert (result["count"], result["offset"], result["total"]) == (2, 1, 6)
    assert set(queries.channel_history(OUTSIDER, "C1")) == {"messages"}


def test_latest_and_oldest_are_exclusive_at_millisecond_precision(queries):
    # m3 and m4 both sit in millisecond .003, so an ISO bound treats them alike.
    assert _ids(queries.channel_history(OUTSIDER, "C1", latest=_iso(BASE + 3 * MS))) == ["m2", "m1"]
    assert _ids(
        queries.channel_history(
            OUTSIDER, "C1", oldest=_iso(BASE + 3 * MS), latest=_iso(BASE + 7 * MS)
        )
    ) == ["m5"]
    assert _ids(
        queries.channel_history(
            OUTSIDER, "C1", oldest=_iso(BASE + 3 * MS), latest=_iso(BASE + 5 * MS), inclusive=True
        )
    ) == ["m5", "m4", "m3"]


def test_epoch_bounds_in_seconds_keep_microseconds(queries):
    between = (BASE + 3 * MS + 150) / 1_000_000
    assert _ids(queries.channel_history(OUTSIDER, "C1", latest=f"{between:.6f}")) == [
        "m3",
        "m2",
        "m1",
    ]
    assert _ids(queries.channel_history(OUTSIDER, "C1", latest=(BASE + 2 * MS) // 1000)) == ["m1"]


def test_private_fields_never_leave_the_store(queries):
    for message in queries.channel_history(OUTSIDER, "C1", count=100)["messages"]:
        assert "_sort" not in message and "_importFile" not in message


def test_dm_history(queries):
    assert _ids(queries.im_history(BEN, "D1")) == ["d1"]


@pytest.mark.parametrize("params", [{"latest": "yesterday"}, {"offset": -1}, {"count": "x"}])
def test_unusable_parameters_are_invalid(queries, params):
    with pytest.raises(MeteorError) as refused:
        queries.channel_history(OUTSIDER, "C1", **params)
    assert refused.value.error_type == "error-invalid-params"


def test_bounds_helper():
    assert history_bounds() == (None, None)
    assert history_bounds(latest="2024-01-01T00:00:00.001Z") == (None, BASE + MS)
    assert history_bounds(oldest="2024-01-01T00:00:00.001Z", inclusive=True) == (BASE + MS, None)


def test_members_list_only_their_own_private_groups_and_direct_messages(queries):
    assert [r["_id"] for r in queries.groups_list(ANN)["groups"]] == ["P1"]
    assert [r["_id"] for r in queries.im_list(ANN)["ims"]] == ["D1"]
    assert [r["_id"] for r in queries.im_list(BEN)["ims"]] == ["D1"]
    assert queries.groups_list(BEN) == {"groups": [], "count": 0, "offset": 0, "total": 0}
    assert queries.im_list(OUTSIDER)["total"] == 0
    # Listing is membership, not administration: an admin in no room lists none here.
    assert queries.groups_list(ADMIN)["total"] == 0


def test_members_read_their_rooms_and_others_get_the_missing_room_error(queries):
    assert queries.group_info(ANN, room_id="P1")["group"]["name"] == "secret"
    assert queries.group_info(ANN, room_name="secret")["group"]["_id"] == "P1"
    assert _ids(queries.im_history(ANN, "D1")) == ["d1"]
    assert queries.group_info(ADMIN, room_id="P1")["group"]["_id"] == "P1"
    assert _ids(queries.im_history(ADMIN, "D1")) == ["d1"]
    for call in (
        lambda: queries.group_info(BEN, room_id="P1"),
        lambda: queries.group_info(OUTSIDER, room_name="secret"),
        lambda: queries.group_history(OUTSIDER, "P1"),
        lambda: queries.im_history(OUTSIDER, "D1"),
    ):
        with pytest.raises(RoomNotFound) as refused:
            call()
        assert refused.value.error_type == "error-room-not-found"
    with pytest.raises(RoomNotFound) as missing:
        queries.group_info(OUTSIDER, room_id="no-such-room")
    with pytest.raises(RoomNotFound) as hidden:
        queries.group_info(OUTSIDER, room_id="P1")
    assert hidden.value.message == missing.value.message


def test_public_channels_need_view_c_room_not_membership(queries):
    assert queries.channel_info(OUTSIDER, room_id="C1")["channel"]["name"] == "general"
    without = Reader("u1", frozenset())
    with pytest.raises(RoomNotFound):
        queries.channel_info(without, room_id="C1")


def test_membership_follows_set_members(queries):
    workspace = queries._workspace
    workspace.set_members("P1", ["u2"])
    assert queries.groups_list(BEN)["total"] == 1
    assert queries.groups_list(ANN)["total"] == 0
    with pytest.raises(RoomNotFound):
        queries.group_info(ANN, room_id="P1")
    workspace.delete_room("P1")
    assert queries.groups_list(BEN)["total"] == 0


def test_everyone_lists_sort_and_filter_like_rocket_chat(queries):
    workspace = queries._workspace
    workspace.insert_rooms(
        [
            {"_id": "P2", "t": "p", "name": "alpha", "archived": True, "msgs": 9},
            {"_id": "P3", "t": "p", "name": "zulu", "archived": False, "msgs": 3},
        ]
    )

    def names(**kwargs):
        return [r["name"] for r in queries.groups_list_all(**kwargs)["groups"]]

    assert names() == ["alpha", "secret", "zulu"]
    assert names(sort='{"name": -1}') == ["zulu", "secret", "alpha"]
    # Rooms without the field sort first, as MongoDB sorts them.
    assert names(sort='{"msgs": -1}') == ["alpha", "zulu", "secret"]
    assert names(query='{"archived": false}') == ["zulu"]
    page = queries.groups_list_all(offset=1, count=1, sort='{"name": 1}')
    assert ([r["name"] for r in page["groups"]], page["total"]) == (["secret"], 3)


@pytest.mark.parametrize(
    ("parameter", "value", "error_type"),
    [
        ("sort", "name", "error-invalid-sort"),
        ("sort", "[1]", "error-invalid-sort"),
        ("sort", '{"password": 1}', "error-invalid-sort"),
        ("sort", '{"name": 2}', "error-invalid-sort"),
        ("sort", '{"name": true}', "error-invalid-sort"),
        ("sort", '{"name": 1, "ts": 1, "lm": 1, "msgs": 1}', "error-invalid-sort"),
        ("query", "{", "error-invalid-query"),
        ("query", '{"$where": "1"}', "error-invalid-query"),
        ("query", '{"name": {"$regex": "(a+)+$"}}', "error-invalid-query"),
        ("query", '{"msgs": {"$regex": "1"}}', "error-invalid-query"),
        ("fields", '{"name": 1, "msgs": 0}', "error-invalid-fields"),
        ("fields", '{"$where": 1}', "error-invalid-fields"),
        ("query", '{"u.username": "ann"}', "error-invalid-query"),
        ("query", "[" * 100_000, "error-invalid-query"),
    ],
)
def test_unusable_sort_or_query_is_rocket_chats_error(queries, parameter, value, error_type):
    with pytest.raises(InvalidListFilter) as refused:
        queries.im_list_everyone(**{parameter: value})
    assert refused.value.error_type == error_type
    assert refused.value.details == {"helperMethod": "parseJsonQuery"}
