"""A message found by its id alone, a thread's replies and a room's thread starts."""

from __future__ import annotations

import shutil

import pytest

from storage import message_ids
from storage.message_shards import MessageShards
from tests.support.workspace import SECOND, ids_of, message, write


def test_a_message_is_found_by_id_in_any_room_and_after_a_reopen(ws, backend):
    write(ws, [message(i) for i in range(30)] + [message(i, rid="R2") for i in range(30, 40)])
    assert ws.message("m012")["msg"] == "text 12"
    assert ws.message("m035")["rid"] == "R2"
    assert ws.message("nope") is None
    assert backend.open().workspace.message("m033")["rid"] == "R2"


def test_a_message_whose_time_changed_is_found_where_it_moved(ws):
    write(ws, [message(i) for i in range(30)])
    moved = message(3, msg="edited")
    moved["_sort"] = 100 * SECOND
    write(ws, [moved])
    assert ws.message("m003")["msg"] == "edited"
    assert ws.message("m003")["_sort"] == 100 * SECOND


def test_hidden_messages_are_found_and_deleted_rooms_are_not(ws):
    write(ws, [message(1, _hidden=True), message(2, rid="R2")])
    assert ws.message("m001")["_hidden"] is True
    ws.delete_room("R2")
    assert ws.message("m002") is None


def test_a_workspace_stored_before_the_id_index_gets_one_on_first_lookup(ws, backend):
    if backend.kind != "tinydb":
        pytest.skip("PostgreSQL finds messages by its own index")
    write(ws, [message(i) for i in range(20)])
    backend.close()
    shutil.rmtree(backend._state_dir / "workspace" / "ids")
    reopened = backend.open().workspace
    assert reopened.message("m017")["msg"] == "text 17"


def test_a_lookup_reads_one_bucket_of_the_index(ws, backend, monkeypatch):
    if backend.kind != "tinydb":
        pytest.skip("the bucket files are TinyDB's")
    write(ws, [message(i) for i in range(200)])
    buckets = list((backend._state_dir / "workspace" / "ids").glob("*.jsonl"))
    assert len(buckets) > 50
    read = []
    original = message_ids.Path.read_bytes
    monkeypatch.setattr(
        message_ids.Path, "read_bytes", lambda self: read.append(self.name) or original(self)
    )
    assert ws.message("m150")["msg"] == "text 150"
    assert len([name for name in read if name.endswith(".jsonl")]) == 1


def test_thread_replies_and_roots(ws):
    write(
        ws,
        [
            message(1, tcount=3, tlm="t9"),
            message(2, tmid="m001"),
            message(3),
            message(4, tmid="m001", tshow=True),
            message(5, tmid="m001", _hidden=True),
            message(6, tcount=1),
            message(7, tmid="m006"),
            message(8, tcount=1, _hidden=True),
            *[message(i) for i in range(9, 30)],
            message(30, tmid="m001"),
        ],
    )
    assert ids_of(ws.thread_messages("R1", "m001")) == ["m002", "m004", "m030"]
    assert ids_of(ws.thread_messages("R1", "m006")) == ["m007"]
    assert ws.thread_messages("R2", "m001") == []
    assert ids_of(ws.thread_roots("R1")) == ["m001", "m006"]
    assert ws.thread_roots("R2") == []


def test_id_lines_are_synced_at_close_and_rebuilt_after_a_stop_without_it(tmp_path):
    shards = MessageShards(tmp_path, fsync=True)
    shards.upsert("R1", [message(i) for i in range(5)])
    marks = tmp_path / "ids"
    assert (marks / "unsynced").exists()
    # Stopped without closing: the next opening starts the index over...
    reopened = MessageShards(tmp_path, fsync=True)
    assert not (marks / "unsynced").exists() and not list(marks.glob("*.jsonl"))
    # ...and the first lookup rebuilds it from the shards.
    assert reopened.find("m003")["msg"] == "text 3"
    reopened.upsert("R1", [message(9)])
    reopened.close()
    assert not (marks / "unsynced").exists()
    assert MessageShards(tmp_path, fsync=True).find("m009")["msg"] == "text 9"
