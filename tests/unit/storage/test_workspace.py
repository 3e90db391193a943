"""Rooms and the workspace's reads: paging, bounds, threads, lookups and statistics."""

from __future__ import annotations

import random

import pytest

from tests.support.workspace import SECOND, ids_of, message, write


def test_history_pages_newest_first_with_offset_count_and_total(ws):
    messages = [message(i) for i in range(40)]
    random.Random(1).shuffle(messages)
    write(ws, messages)

    page, total = ws.history("R1", count=5)
    assert ids_of(page) == ["m039", "m038", "m037", "m036", "m035"]
    assert total == 40
    page, total = ws.history("R1", offset=33, count=5)
    assert ids_of(page) == ["m006", "m005", "m004", "m003", "m002"]
    assert total == 40
    assert ws.history("R1", offset=40, count=5) == ([], 40)


def test_history_bounds_are_inclusive_since_and_exclusive_before(ws):
    write(ws, [message(i) for i in range(40)])

    page, total = ws.history("R1", since=10 * SECOND, before=20 * SECOND, count=3, offset=2)
    assert ids_of(page) == ["m017", "m016", "m015"]
    assert total == 10


def test_history_pages_oldest_first_when_asked(ws):
    messages = [message(i) for i in range(40)]
    random.Random(2).shuffle(messages)
    write(ws, messages)

    page, total = ws.history("R1", count=5, newest_first=False)
    assert (ids_of(page), total) == (["m000", "m001", "m002", "m003", "m004"], 40)
    page, total = ws.history("R1", offset=33, count=5, newest_first=False)
    assert ids_of(page) == ["m033", "m034", "m035", "m036", "m037"]
    page, total = ws.history(
        "R1", since=10 * SECOND, before=20 * SECOND, count=3, offset=2, newest_first=False
    )
    assert (ids_of(page), total) == (["m012", "m013", "m014"], 10)


def test_both_orders_page_through_the_same_messages_whatever_the_window(ws):
    write(ws, [message(i, _hidden=i % 9 == 0) for i in range(50)])
    visible = [f"m{i:03}" for i in range(50) if i % 9]
    for since, before in ((None, None), (3 * SECOND, None), (None, 41 * SECOND), (8, 30 * SECOND)):
        inside = [
            f"m{i:03}"
            for i in range(50)
            if i % 9
            and (since is None or i * SECOND >= since)
            and (before is None or i * SECOND < before)
        ]
        assert set(inside) <= set(visible)
        for offset in (0, 4, 13):
            newest, total = ws.history("R1", since=since, before=before, offset=offset, count=6)
            oldest, again = ws.history(
                "R1", since=since, before=before, offset=offset, count=6, newest_first=False
            )
            assert total == again == len(inside)
            assert ids_of(newest) == inside[::-1][offset : offset + 6]
            assert ids_of(oldest) == inside[offset : offset + 6]


def test_thread_replies_and_hidden_messages(ws):
    write(
        ws,
        [
            message(1),
            message(2, tmid="m001"),
            message(3, tmid="m001", tshow=True),
            message(4, _hidden=True),
        ],
    )

    assert ids_of(ws.history("R1")[0]) == ["m003", "m002", "m001"]
    page, total = ws.history("R1", thread_messages=False)
    assert (ids_of(page), total) == (["m003", "m001"], 2)


def test_rooms_by_type_with_paging_and_lookups(ws):
    page, total = ws.rooms("c")
    assert (ids_of(page), total) == (["R1"], 1)
    assert ws.rooms(None, offset=1, count=1)[1] == 3
    assert ws.room_by_name("secret")["_id"] == "R2"
    assert ws.room_by_import_id("G1")["_id"] == "R2"
    assert ws.direct_room_by_members(["a", "b"])["_id"] == "ab"
    assert ws.direct_room_by_members(["a"]) is None
    ws.update_rooms({"R2": {"name": "renamed"}})
    assert ws.room_by_name("secret") is None
    assert ws.room_by_name("renamed")["_id"] == "R2"


def test_room_statistics_follow_the_messages(ws):
    write(ws, [message(1), message(2), message(3, tmid="m001"), message(4, _hidden=True)])
    ws.refresh_room_stats(["R1"], "2024-01-01T00:00:00.000Z")
    room = ws.room("R1")
    assert room["msgs"] == 3
    assert room["lastMessage"]["_id"] == "m002"
    assert "_sort" not in room["lastMessage"]


def test_messages_without_a_sort_key_are_refused(ws):
    with pytest.raises(ValueError):
        ws.upsert_messages([{"_id": "x", "rid": "R1", "ts": "2024-01-01T00:00:00.000Z"}])


def test_reading_a_room_while_it_is_being_written_sees_each_message_once(ws):
    write(ws, [message(i) for i in range(0, 40, 2)])
    reader = ws.messages("R1")
    seen = [next(reader)["_id"] for _ in range(9)]
    write(ws, [message(i) for i in range(1, 40, 2)])  # rewrites the shards being read
    seen += [m["_id"] for m in reader]
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert seen[-1] == "m039"


def test_member_rooms_survive_a_reopen(ws, backend):
    ws.set_members("R2", ["a", "b"])
    ws.set_members("ab", ["a", "b"])
    ws.set_members("R1", ["a"])
    reopened = backend.open().workspace
    assert reopened.is_member("R2", "b") and not reopened.is_member("R1", "b")
    page, total = reopened.member_rooms("a", "p")
    assert ([r["_id"] for r in page], total) == (["R2"], 1)
    assert reopened.member_rooms("b", "d")[1] == 1
    assert reopened.member_rooms("nobody", "p") == ([], 0)


def test_membership_changes_and_deleted_rooms_update_the_lookups(ws):
    ws.set_members("R2", ["a"])
    assert ws.is_member("R2", "a")
    ws.set_members("R2", ["b"])
    assert not ws.is_member("R2", "a") and ws.is_member("R2", "b")
    ws.delete_room("R2")
    assert not ws.is_member("R2", "b")
    assert ws.member_rooms("b", "p") == ([], 0)


def test_upload_records_are_replaced_whole_and_survive_a_reopen(ws, backend):
    ws.save_upload({"_id": "U1", "name": "a.txt", "rooms": ["R2"], "size": 3})
    ws.save_upload({"_id": "U1", "name": "a.txt", "rooms": ["R1", "R2"]})
    again = backend.open().workspace
    assert again.upload("U1") == {"_id": "U1", "name": "a.txt", "rooms": ["R1", "R2"]}
    assert again.upload("missing") is None


def test_a_room_inserted_after_its_members_were_written_is_listed_for_them(ws):
    # An import writes members before their room; a reader may look in between.
    ws.set_members("N1", ["a"])
    assert ws.member_rooms("a", "p") == ([], 0)
    ws.insert_rooms([{"_id": "N1", "t": "p", "name": "new"}])
    assert [r["_id"] for r in ws.member_rooms("a", "p")[0]] == ["N1"]
