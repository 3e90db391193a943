"""Staging records of an import operation: what a prepare wrote is what the import reads."""

from __future__ import annotations

import orjson
import pytest

from storage.staging import StagingArea, StagingIncomplete
from storage.store import Store


@pytest.fixture
def area(store):
    return StagingArea(store)


def _user(i, **extra):
    return {
        "importIds": [f"U{i}"],
        "username": f"user{i}",
        "emails": [f"u{i}@example.com"],
        "type": "user",
        "deleted": False,
        **extra,
    }


def _prepare(area, op="op1", users=3, messages=5):
    with area.writer(op) as sink:
        for i in range(users):
            sink.add_user(_user(i))
        sink.add_channel({"importIds": ["C1"], "name": "general", "t": "c", "users": ["U0"]})
        sink.add_channel({"importIds": ["G1"], "name": "secret", "t": "p", "archived": True})
        sink.add_channel({"importIds": ["D1"], "t": "d", "users": ["U0", "U1"]})
        for i in range(messages):
            sink.add_message(
                {
                    "_id": f"m{i}",
                    "rid": "C1",
                    "u": {"_id": "U0"},
                    "msg": str(i),
                    "ts": 1700000000.000001 * (i + 1),
                }
            )
        sink.warn("skipped a broken file")
    return op


def test_round_trip_keeps_records_in_order_with_counts(area):
    op = _prepare(area)

    assert area.is_complete(op)
    assert area.counts(op) == {
        "users": 3,
        "channels": 3,
        "messages": 5,
        "contacts": 0,
        "warnings": 1,
    }
    assert [(seq, u["username"]) for seq, u in area.users(op)] == [
        (0, "user0"),
        (1, "user1"),
        (2, "user2"),
    ]
    assert [m["_id"] for _, m in area.messages(op)] == ["m0", "m1", "m2", "m3", "m4"]
    # Floats come back exactly, so microsecond ordering survives staging.
    assert next(area.messages(op))[1]["ts"] == 1700000000.000001
    assert area.warnings(op) == ["skipped a broken file"]


def test_selection_lists_users_and_non_direct_channels_plus_one_dm_entry(area):
    op = _prepare(area)

    selection = area.selection(op)

    assert selection["message_count"] == 5
    assert selection["users"][0] == {
        "user_id": "U0",
        "username": "user0",
        "email": "u0@example.com",
        "is_deleted": False,
        "is_bot": False,
        "do_import": True,
        "is_email_taken": False,
    }
    channels = {c["channel_id"]: c for c in selection["channels"]}
    assert set(channels) == {"C1", "G1", "__directMessages__"}
    assert channels["G1"]["is_private"] and channels["G1"]["is_archived"]
    assert channels["__directMessages__"]["is_direct"]
    assert channels["__directMessages__"]["name"] == "Direct_Messages"


def test_selection_without_direct_messages_has_no_dm_entry(area):
    with area.writer("op") as sink:
        sink.add_user({"importIds": ["U1"], "emails": [], "type": "bot"})
    selection = area.selection("op")
    assert selection == {
        "users": [
            {
                "user_id": "U1",
                "username": None,
                "email": None,
                "is_deleted": False,
                "is_bot": True,
                "do_import": True,
                "is_email_taken": False,
            }
        ],
        "channels": [],
        "contacts": [],
        "message_count": 0,
    }


def test_a_prepare_that_crashed_is_detected_and_discarded(tmp_path):
    store = Store(tmp_path, fsync=False)
    area = StagingArea(store, flush_every=10)
    sink = area.writer("crashed")
    for i in range(25):  # some batches reach the disk, then the process dies
        sink.add_user(_user(i))
    _prepare(area, "finished")
    store.close()

    restarted = Store(tmp_path, fsync=False)
    area = StagingArea(restarted)
    assert not area.is_complete("crashed")
    with pytest.raises(StagingIncomplete):
        list(area.users("crashed"))
    assert area.discard_incomplete() == ["crashed"]
    assert area.operations() == ["finished"]
    assert area.counts("finished")["users"] == 3
    restarted.close()


def test_failed_prepare_inside_with_leaves_nothing(area):
    with pytest.raises(RuntimeError), area.writer("op") as sink:
        sink.add_user(_user(1))
        raise RuntimeError("parser blew up")
    assert area.operations() == []


def test_appending_users_later_keeps_earlier_ones(area):
    op = _prepare(area)
    with area.writer(op, append=True) as sink:
        sink.add_user(_user(7))
    assert [u["username"] for _, u in area.users(op)][-2:] == ["user2", "user7"]
    assert area.counts(op)["users"] == 4


def test_a_torn_append_is_invisible_and_rolled_back(area, store):
    op = _prepare(area)
    sink = area.writer(op, append=True)
    sink.add_user(_user(8))
    sink._flush()  # on disk, but the process dies before finish()
    del sink
    with open(store.state_dir / "staging" / op / "users.jsonl", "ab") as torn:
        torn.write(b'{"importIds": ["half')

    assert area.counts(op)["users"] == 3
    assert len(list(area.users(op))) == 3
    with area.writer(op, append=True) as sink:
        sink.add_user(_user(9))
    assert [u["username"] for _, u in area.users(op)] == ["user0", "user1", "user2", "user9"]


def test_prepare_again_replaces_the_old_records(area):
    op = _prepare(area, users=3)
    _prepare(area, op, users=1, messages=0)
    assert area.counts(op) == {
        "users": 1,
        "channels": 3,
        "messages": 0,
        "contacts": 0,
        "warnings": 1,
    }


def test_errors_are_marked_per_record_and_deleted_with_the_operation(area):
    op = _prepare(area)
    area.mark_errors(op, [("message", 3, "importer-message-unknown-room")])
    assert list(area.errors(op)) == [
        {"kind": "message", "seq": 3, "error": "importer-message-unknown-room"}
    ]

    area.delete(op)
    assert not area.is_complete(op)
    assert list(area.errors(op)) == []


def test_records_that_are_not_json_are_refused(area):
    with area.writer("op") as sink, pytest.raises(ValueError):
        sink.add_message({"_id": "m", "ts": object()})


@pytest.mark.parametrize("bad", ["../x", "", "a/b", "x" * 65])
def test_operation_ids_cannot_escape_the_staging_directory(area, bad):
    with pytest.raises(ValueError):
        area.writer(bad)


def test_contacts_are_staged_counted_and_selectable(tmp_path):
    area = StagingArea(Store(tmp_path, fsync=False))
    with area.writer("op") as sink:
        sink.add_contact(
            {"importIds": ["c1"], "name": "Dana", "emails": ["d@x.example"], "phones": []}
        )
    assert area.counts("op")["contacts"] == 1
    assert [c["name"] for _, c in area.contacts("op")] == ["Dana"]
    assert area.selection("op")["contacts"] == [
        {"id": "c1", "name": "Dana", "emails": ["d@x.example"], "phones": [], "do_import": True}
    ]


def test_a_prepare_finished_before_contacts_existed_reads_as_none(tmp_path):
    area = StagingArea(Store(tmp_path, fsync=False))
    with area.writer("op") as sink:
        sink.add_user({"importIds": ["u1"], "username": "ann", "emails": []})
    manifest_path = tmp_path / "staging" / "op" / "manifest.json"
    manifest = orjson.loads(manifest_path.read_bytes())
    for part in ("counts", "sizes"):
        del manifest[part]["contact"]
    manifest_path.write_bytes(orjson.dumps(manifest))

    assert area.counts("op")["contacts"] == 0
    assert list(area.contacts("op")) == []
    with area.writer("op", append=True) as sink:
        sink.add_user({"importIds": ["u2"], "username": "bo", "emails": []})
    assert area.counts("op") == {
        "users": 2, "channels": 0, "messages": 0, "contacts": 0, "warnings": 0
    }  # fmt: skip
