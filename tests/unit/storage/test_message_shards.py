"""Sharded messages as a reader sees them: upserts, moves, pending files and crashed writes."""

from __future__ import annotations

from tests.support.workspace import SECOND, ids_of, import_file, message, write


def test_upserting_the_same_ids_again_never_duplicates(ws):
    write(ws, [message(i) for i in range(20)])
    write(ws, [message(i, msg="edited") for i in range(20)])

    page, total = ws.history("R1", count=1)
    assert total == 20
    assert page[0]["msg"] == "edited"


def test_a_message_whose_time_changed_moves_instead_of_doubling(ws, backend):
    write(ws, [message(i) for i in range(20)])
    reopened = backend.open().workspace  # the _id index is rebuilt from disk
    reopened.upsert_messages([{**message(3), "_sort": 100 * SECOND}])

    page, total = reopened.history("R1", count=1)
    assert (page[0]["_id"], total) == ("m003", 20)


def test_microsecond_order_within_one_second_survives(ws):
    base = 1_700_000_000 * SECOND
    write(ws, [{**message(i), "_sort": base + 3 - i} for i in range(3)])  # m000 is newest
    assert ids_of(ws.history("R1")[0]) == ["m000", "m001", "m002"]


def test_pending_files_are_found_and_marked_downloaded_by_file_id(ws, backend):
    write(
        ws,
        [
            message(1, _importFile=import_file(1)),
            message(2, _importFile=import_file(1)),
            message(3, _importFile=import_file(2)),
            message(4, _importFile=import_file(3, external=True)),
            message(5, rid="R2", _importFile=import_file(4)),
            message(6),
        ],
    )
    assert ws.pending_file_count() == 4
    assert ids_of(ws.pending_file_messages("R1")) == ["m001", "m002", "m003"]

    attachment = {"title": "1.png", "title_link": "/file-upload/x/1.png"}
    changed = ws.mark_files_downloaded([("F1", "/file-upload/x/1.png", attachment)])

    assert changed == 2
    assert ws.pending_file_count() == 2
    reopened = backend.open().workspace
    assert ids_of(reopened.pending_file_messages()) == ["m003", "m005"]
    stored = {m["_id"]: m for m in reopened.messages("R1")}
    assert stored["m001"]["_importFile"]["downloaded"] is True
    assert stored["m002"]["attachments"] == [attachment]


def test_everything_survives_a_restart_and_a_crashed_write_leaves_no_trace(ws, backend, tmp_path):
    write(ws, [message(i) for i in range(30)])
    room_dir = tmp_path / "state" / "workspace" / "rooms" / "R1"
    if backend.kind == "tinydb":
        # A write that died after its new shard and before the new index.
        (room_dir / "999.json").write_bytes(b'[{"_id": "ghost", "_sort": 1, "rid": "R1"}]')

    reopened = backend.open().workspace
    page, total = reopened.history("R1", count=2)
    assert (ids_of(page), total) == (["m029", "m028"], 30)
    assert reopened.room_by_import_id("C1")["_id"] == "R1"
    assert not (room_dir / "999.json").exists()
