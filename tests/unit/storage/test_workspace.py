"""Rooms and sharded messages: paging, bounds, upserts and pending files as a reader sees them."""

from __future__ import annotations

import random

import pytest

from storage import workspace as workspace_module
from storage.workspace import WorkspaceStore

SECOND = 1_000_000


@pytest.fixture(autouse=True)
def small_shards(monkeypatch):
    # Small shards make every test cross shard boundaries.
    monkeypatch.setattr(workspace_module, "SHARD_MAX", 7)


@pytest.fixture
def ws(store):
    ws = WorkspaceStore(store)
    ws.insert_rooms(
        [
            {"_id": "R1", "t": "c", "name": "general", "importIds": ["C1"]},
            {"_id": "R2", "t": "p", "name": "secret", "importIds": ["G1"]},
            {"_id": "ab", "t": "d", "uids": ["b", "a"], "usernames": ["bob", "al"]},
        ]
    )
    return ws


def _msg(i, rid="R1", **extra):
    return {
        "_id": f"m{i:03d}",
        "rid": rid,
        "msg": f"text {i}",
        "_sort": i * SECOND,
        "ts": f"t{i}",
        **extra,
    }


def _ids(messages):
    return [m["_id"] for m in messages]


def _write(ws, messages):
    with ws.writer(per_room=10) as writer:
        for message in messages:
            writer.add(message)


def test_history_pages_newest_first_with_offset_count_and_total(ws):
    messages = [_msg(i) for i in range(40)]
    random.Random(1).shuffle(messages)
    _write(ws, messages)

    page, total = ws.history("R1", count=5)
    assert _ids(page) == ["m039", "m038", "m037", "m036", "m035"]
    assert total == 40
    page, total = ws.history("R1", offset=33, count=5)
    assert _ids(page) == ["m006", "m005", "m004", "m003", "m002"]
    assert total == 40
    assert ws.history("R1", offset=40, count=5) == ([], 40)


def test_history_bounds_are_inclusive_since_and_exclusive_before(ws):
    _write(ws, [_msg(i) for i in range(40)])

    page, total = ws.history("R1", since=10 * SECOND, before=20 * SECOND, count=3, offset=2)
    assert _ids(page) == ["m017", "m016", "m015"]
    assert total == 10


def test_upserting_the_same_ids_again_never_duplicates(ws):
    _write(ws, [_msg(i) for i in range(20)])
    _write(ws, [_msg(i, msg="edited") for i in range(20)])

    page, total = ws.history("R1", count=1)
    assert total == 20
    assert page[0]["msg"] == "edited"


def test_a_message_whose_time_changed_moves_instead_of_doubling(ws, store):
    _write(ws, [_msg(i) for i in range(20)])
    reopened = WorkspaceStore(store)  # the _id index is rebuilt from disk
    reopened.upsert_messages([{**_msg(3), "_sort": 100 * SECOND}])

    page, total = reopened.history("R1", count=1)
    assert (page[0]["_id"], total) == ("m003", 20)


def test_microsecond_order_within_one_second_survives(ws):
    base = 1_700_000_000 * SECOND
    _write(ws, [{**_msg(i), "_sort": base + 3 - i} for i in range(3)])  # m000 is newest
    assert _ids(ws.history("R1")[0]) == ["m000", "m001", "m002"]


def test_thread_replies_and_hidden_messages(ws):
    _write(
        ws, [_msg(1), _msg(2, tmid="m001"), _msg(3, tmid="m001", tshow=True), _msg(4, _hidden=True)]
    )

    assert _ids(ws.history("R1")[0]) == ["m003", "m002", "m001"]
    page, total = ws.history("R1", thread_messages=False)
    assert (_ids(page), total) == (["m003", "m001"], 2)


def test_rooms_by_type_with_paging_and_lookups(ws):
    page, total = ws.rooms("c")
    assert (_ids(page), total) == (["R1"], 1)
    assert ws.rooms(None, offset=1, count=1)[1] == 3
    assert ws.room_by_name("secret")["_id"] == "R2"
    assert ws.room_by_import_id("G1")["_id"] == "R2"
    assert ws.direct_room_by_members(["a", "b"])["_id"] == "ab"
    assert ws.direct_room_by_members(["a"]) is None
    ws.update_rooms({"R2": {"name": "renamed"}})
    assert ws.room_by_name("secret") is None
    assert ws.room_by_name("renamed")["_id"] == "R2"


def test_room_statistics_follow_the_messages(ws):
    _write(ws, [_msg(1), _msg(2), _msg(3, tmid="m001"), _msg(4, _hidden=True)])
    ws.refresh_room_stats(["R1"], "2024-01-01T00:00:00.000Z")
    room = ws.room("R1")
    assert room["msgs"] == 3
    assert room["lastMessage"]["_id"] == "m002"
    assert "_sort" not in room["lastMessage"]


def _file(i, **extra):
    return {
        "downloadUrl": f"https://files.example/{i}",
        "id": f"F{i}",
        "name": f"{i}.png",
        "external": False,
        "source": "slack",
        **extra,
    }


def test_pending_files_are_found_and_marked_downloaded_by_file_id(ws, store):
    _write(
        ws,
        [
            _msg(1, _importFile=_file(1)),
            _msg(2, _importFile=_file(1)),
            _msg(3, _importFile=_file(2)),
            _msg(4, _importFile=_file(3, external=True)),
            _msg(5, rid="R2", _importFile=_file(4)),
            _msg(6),
        ],
    )
    assert ws.pending_file_count() == 4
    assert _ids(ws.pending_file_messages("R1")) == ["m001", "m002", "m003"]

    attachment = {"title": "1.png", "title_link": "/file-upload/x/1.png"}
    changed = ws.mark_files_downloaded([("F1", "/file-upload/x/1.png", attachment)])

    assert changed == 2
    assert ws.pending_file_count() == 2
    reopened = WorkspaceStore(store)
    assert _ids(reopened.pending_file_messages()) == ["m003", "m005"]
    stored = {m["_id"]: m for m in reopened.messages("R1")}
    assert stored["m001"]["_importFile"]["downloaded"] is True
    assert stored["m002"]["attachments"] == [attachment]


def test_everything_survives_a_restart_and_a_crashed_write_leaves_no_trace(ws, store):
    _write(ws, [_msg(i) for i in range(30)])
    room_dir = store.state_dir / "workspace" / "rooms" / "R1"
    # A write that died after its new shard and before the new index.
    (room_dir / "999.json").write_bytes(b'[{"_id": "ghost", "_sort": 1, "rid": "R1"}]')

    reopened = WorkspaceStore(store)
    page, total = reopened.history("R1", count=2)
    assert (_ids(page), total) == (["m029", "m028"], 30)
    assert reopened.room_by_import_id("C1")["_id"] == "R1"
    assert not (room_dir / "999.json").exists()


def test_messages_without_a_sort_key_are_refused(ws):
    with pytest.raises(ValueError):
        ws.upsert_messages([{"_id": "x", "rid": "R1", "ts": "2024-01-01T00:00:00.000Z"}])


def test_reading_a_room_while_it_is_being_written_sees_each_message_once(ws):
    _write(ws, [_msg(i) for i in range(0, 40, 2)])
    reader = ws.messages("R1")
    seen = [next(reader)["_id"] for _ in range(9)]
    _write(ws, [_msg(i) for i in range(1, 40, 2)])  # rewrites the shards being read
    seen += [m["_id"] for m in reader]
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert seen[-1] == "m039"
