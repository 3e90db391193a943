"""One message and threads, read through their room's rules."""

from __future__ import annotations

import pytest

from ferry.chat.message_reads import MessageNotAllowed, MessageReads
from ferry.chat.reads import Reader, WorkspaceQueries
from storage.store import Store
from storage.workspace import WorkspaceStore

ANN = Reader("u1", frozenset({"view-c-room"}))
CY = Reader("u3", frozenset({"view-c-room"}))
ADMIN = Reader("admin", frozenset({"view-c-room", "view-room-administration"}))


def _message(mid, rid, sort, **extra):
    return {
        "_id": mid,
        "rid": rid,
        "msg": mid,
        "ts": f"2024-01-01T00:00:0{sort}.000Z",
        "_sort": sort * 1_000_000,
        "u": {"_id": "u1", "username": "ann"},
        **extra,
    }


@pytest.fixture
def reads(tmp_path):
    workspace = WorkspaceStore(Store(tmp_path, fsync=False))
    workspace.insert_rooms(
        [{"_id": "C1", "t": "c", "name": "general"}, {"_id": "D1", "t": "d", "uids": ["u1", "u2"]}]
    )
    workspace.set_members("D1", ["u1", "u2"])
    workspace.upsert_messages(
        [
            _message("root", "C1", 1, tcount=1, tlm="2024-01-01T00:00:02.000Z", replies=["u2"]),
            _message("reply", "C1", 2, tmid="root", _importFile={"downloadUrl": "http://x"}),
            _message("gone", "C1", 3, _hidden=True),
            _message("dm", "D1", 4),
        ]
    )
    return MessageReads(WorkspaceQueries(workspace), workspace)


def test_a_message_shows_without_ferry_s_own_fields(reads):
    message = reads.message(CY, "reply")["message"]
    assert message["tmid"] == "root"
    assert not {"_sort", "_importFile", "_hidden"} & set(message)


@pytest.mark.parametrize(("reader", "message_id"), [(CY, "dm"), (ANN, "gone"), (ADMIN, "nope")])
def test_unreadable_hidden_and_missing_messages_answer_alike(reads, reader, message_id):
    with pytest.raises(MessageNotAllowed):
        reads.message(reader, message_id)


def test_members_and_room_administrators_read_a_direct_message(reads):
    assert reads.message(ANN, "dm")["message"]["msg"] == "dm"
    assert reads.message(ADMIN, "dm")["message"]["msg"] == "dm"


def test_threads_and_replies(reads):
    replies = reads.thread_messages(CY, "root")
    assert [m["_id"] for m in replies["messages"]] == ["reply"]
    assert "_importFile" not in replies["messages"][0]
    assert [t["_id"] for t in reads.threads(CY, "C1")["threads"]] == ["root"]
    assert reads.threads(ANN, "C1", "following")["total"] == 0
    assert reads.threads(Reader("u2", ANN.permissions), "C1", "following")["total"] == 1
    with pytest.raises(MessageNotAllowed):
        reads.threads(CY, "D1")
