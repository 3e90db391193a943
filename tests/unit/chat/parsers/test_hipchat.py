"""HipChat Server exports read into staging records: tar walking, every record kind, limits."""

from __future__ import annotations

import gzip
import json
import os
import tarfile
import tracemalloc

import pytest

from ferry.chat.parsers.base import ArchiveLimits, ImportFileError, PrepareOptions
from ferry.chat.parsers.hipchat import HipChatImporter
from tests.support.hipchat_export import (
    AVATAR,
    ROOMS,
    USERS,
    add,
    epoch,
    full_export,
    hostile,
    make_tar,
    prepare,
)
from tests.support.importers import RecordingSink


def test_users_keep_profile_avatar_and_state(hipchat_export):
    users = {u["importIds"][0]: u for u in prepare(hipchat_export).users}
    assert users["1"] == {
        "importIds": ["1"],
        "username": "alice",
        "name": "Alice A",
        "emails": ["alice@example.com"],
        "type": "user",
        "deleted": False,
        "roles": ["user"],
        "utcOffset": None,
        "avatarUrl": "data:image/png;base64," + AVATAR.replace("\n", ""),
        "statusText": None,
        "bio": "CTO",
    }
    assert users["2"]["emails"] == [] and users["2"]["deleted"] is True
    assert users["2"]["avatarUrl"] is None and users["2"]["bio"] is None


def test_rooms_become_channels(hipchat_export):
    sink = prepare(hipchat_export)
    ops, secret = sink.channel("7"), sink.channel("8")
    assert ops == {
        "importIds": ["7"],
        "name": "Ops Room",
        "t": "c",
        "users": ["1", "2"],
        "u": {"_id": "1"},
        "topic": "deploys",
        "description": None,
        "ts": epoch("2016-06-13T20:47:52"),
        "archived": False,
    }
    assert secret["t"] == "p" and secret["users"] == ["2", "10"] and secret["archived"] is True
    assert secret["u"] == {"_id": "2"} and secret["topic"] is None
    assert secret["ts"] == pytest.approx(epoch("2016-06-14T00:00:00") + 0.25)


def test_room_messages_keep_author_time_and_text(hipchat_export):
    sink = prepare(hipchat_export)
    first = sink.message("hipchatenterprise-7-user-m1")
    assert first == {
        "_id": "hipchatenterprise-7-user-m1",
        "rid": "7",
        "u": {"_id": "1"},
        "msg": "hello @bob",
        "ts": pytest.approx(epoch("2017-06-26T15:21:44.123456")),
    }
    me = sink.message("hipchatenterprise-7-user-m2")
    assert me["msg"] == "_waves_"
    assert me["ts"] == pytest.approx(epoch("2017-06-26T15:21:45.5"), abs=1e-6)
    assert me["ts"] > first["ts"]


def test_attachments_become_pending_files_and_the_message_stays(hipchat_export):
    sink = prepare(hipchat_export)
    m3 = sink.message("hipchatenterprise-7-user-m3")
    assert m3["msg"] == "the logs"
    assert m3["_importFile"] == {
        "downloadUrl": "https://hipchat.example/files/1/7/logs.txt",
        "id": "m3-logs.txt",
        "size": 2048,
        "name": "logs.txt",
        "external": False,
        "source": "hipchat-enterprise",
    }
    nameless = sink.message("hipchatenterprise-7-user-m4")["_importFile"]
    assert nameless["id"] == "m4-attachment" and nameless["name"] is None


def test_notifications_are_posted_by_the_bot_under_the_sender_alias(hipchat_export):
    sink = prepare(hipchat_export)
    html = sink.message("hipchatenterprise-7-notif-n1")
    assert html["u"] == {"_id": "rocket.cat"} and html["alias"] == "JIRA"
    assert html["msg"] == "**PROJ-1** moved by [@john_doe](https://j/u)\n[chart](https://j/i.png)"
    assert html["ts"] == pytest.approx(epoch("2017-06-26T15:24:00.000005"), abs=1e-7)
    assert sink.message("hipchatenterprise-7-notif-n2")["msg"] == "build <b>not html</b>"


def test_topic_changes_are_system_messages(hipchat_export):
    topic = prepare(hipchat_export).message("hipchatenterprise-7-topic-t1")
    assert topic["t"] == "room_changed_topic" and topic["msg"] == "deploy freeze"
    assert topic["u"] == {"_id": "1"} and topic["groupable"] is False


def test_archive_guest_and_unknown_messages_are_left_out(hipchat_export):
    sink = prepare(hipchat_export)
    ids = {m["_id"] for m in sink.messages}
    assert not any(x.endswith(("-a1", "-g1", "-p1", "-p2", "-bad1")) for x in ids)
    assert sum("PollMessage" in w for w in sink.warnings) == 1
    assert any("rooms/7/history.json" in w and "skipped 1" in w for w in sink.warnings)


def test_private_chats_are_imported_once_into_one_dm(hipchat_export):
    sink = prepare(hipchat_export)
    dms = [c for c in sink.channels if c["t"] == "d"]
    assert dms == [
        {
            "importIds": ["102"],
            "name": None,
            "t": "d",
            "users": ["10", "2"],
            "u": None,
            "topic": None,
            "description": None,
            "ts": None,
            "archived": False,
        }
    ]
    private = [m for m in sink.messages if m["_id"].startswith("hipchatenterprise-private-")]
    assert sorted(m["_id"] for m in private) == [
        "hipchatenterprise-private-d1",
        "hipchatenterprise-private-d2",
    ]
    d1 = sink.message("hipchatenterprise-private-d1")
    assert d1["rid"] == "102" and d1["u"] == {"_id": "10"} and d1["msg"] == "psst"
    assert d1["ts"] == pytest.approx(epoch("2017-06-27T09:00:00.000042"), abs=1e-7)
    assert sink.message("hipchatenterprise-private-d2")["_importFile"]["id"] == "d2-cat.png"


def test_reimport_yields_identical_records(hipchat_export):
    first, second = prepare(hipchat_export), prepare(hipchat_export)
    assert first.messages == second.messages and first.channels == second.channels
    assert not [w for w in first.warnings if "metadata" in w or "emoticons" in w]


def test_export_under_a_top_folder_and_plain_tar_are_read(tmp_path):
    files = {f"hipchat_export/{k}": v for k, v in full_export().items()}
    nested = prepare(make_tar(tmp_path / "n.tar.gz", files))
    plain = prepare(make_tar(tmp_path / "p.tar", full_export(), mode="w"))
    assert len(nested.messages) == len(plain.messages) == 9


def test_progress_reaches_100(hipchat_export):
    seen: list[float] = []
    prepare(hipchat_export, on_progress=seen.append)
    assert seen[-1] == 100.0 and seen == sorted(seen)


def test_large_history_streams_in_bounded_memory(tmp_path):
    def history():
        yield b"["
        for i in range(25_000):
            item = {
                "UserMessage": {
                    "id": f"m{i}",
                    "sender": {"id": 1},
                    "message": "x" * 40,
                    "timestamp": "2017-06-26T15:21:44Z 1",
                }
            }
            yield (b"," if i else b"") + json.dumps(item).encode()
        yield b"]"

    data = b"".join(history())  # ~3 MB of JSON
    path = tmp_path / "big.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        add(archive, "rooms/1/history.json", data)

    class Counter(RecordingSink):
        count = 0

        def add_message(self, message: dict) -> None:
            self.count += 1

    sink = Counter()
    tracemalloc.start()
    try:
        HipChatImporter().prepare(path, sink, PrepareOptions())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sink.count == 25_000
    assert peak < 1.5 * 1024**2  # the JSON alone is twice that, its objects far more


@pytest.mark.parametrize(
    ("name", "fields", "why"),
    [
        ("../rooms.json", {}, "outside the export"),
        ("rooms/../../rooms.json", {}, "outside the export"),
        ("/rooms.json", {}, "absolute path"),
        ("rooms.json", {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, "symbolic link"),
        ("rooms.json", {"type": tarfile.LNKTYPE, "linkname": "users.json"}, "hard link"),
        ("rooms.json", {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, "device"),
        ("rooms.json", {"type": tarfile.FIFOTYPE}, "device"),
    ],
)
def test_unsafe_entries_are_skipped_with_a_warning(tmp_path, name, fields, why):
    def build(archive):
        content = b"" if fields else json.dumps(ROOMS).encode()
        add(archive, name, content, **fields)

    sink = prepare(hostile(tmp_path, build))
    assert sink.channels == [] and len(sink.users) == 1
    assert any(why in w and "rooms.json" in w for w in sink.warnings)


def test_member_over_the_size_limit_fails(tmp_path):
    path = hostile(tmp_path, lambda a: add(a, "rooms.json", ROOMS))
    with pytest.raises(ImportFileError, match="rooms.json is .* bytes, over the limit"):
        prepare(path, limits=ArchiveLimits(max_member_size=300))


def test_big_attachment_bytes_in_the_archive_do_not_count_against_the_member_limit(tmp_path):
    path = hostile(tmp_path, lambda a: add(a, "rooms/1/files/video.mp4", os.urandom(5_000)))
    assert len(prepare(path, limits=ArchiveLimits(max_member_size=1_000)).users) == 1


def test_json_that_is_not_an_array_is_reported(tmp_path):
    path = hostile(tmp_path, lambda a: add(a, "rooms.json", {"rooms": ROOMS}))
    sink = prepare(path)
    assert sink.channels == [] and any("rooms.json holds no entries" in w for w in sink.warnings)
    quiet = prepare(hostile(tmp_path, lambda a: add(a, "users/5/history.json", [])))
    assert quiet.warnings == []


def test_too_many_members_fail(tmp_path):
    def build(archive):
        for i in range(5):
            add(archive, f"rooms/{i}/files/f", b"x")

    with pytest.raises(ImportFileError, match="more than 3 entries"):
        prepare(hostile(tmp_path, build), limits=ArchiveLimits(max_members=3))


def test_single_json_value_over_the_limit_fails(tmp_path):
    huge = [{"UserMessage": {"id": "m", "message": "x" * 300_000}}]
    path = hostile(tmp_path, lambda a: add(a, "rooms/1/history.json", huge))
    with pytest.raises(ImportFileError, match="rooms/1/history.json holds a single entry"):
        prepare(path, limits=ArchiveLimits(max_json_value_bytes=100_000))


def test_oversized_extended_header_fails(tmp_path):
    path = tmp_path / "pax.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        add(archive, "users.json", USERS[:1], pax_headers={"comment": "x" * (2 * 1024**2)})
    with pytest.raises(ImportFileError, match="tar header"):
        prepare(path)


@pytest.mark.parametrize(
    "content", [b"", b"not an archive" * 100, gzip.compress(b"plain text" * 80, mtime=0)]
)
def test_non_archives_are_extract_errors(tmp_path, content):
    path = tmp_path / "x.tar.gz"
    path.write_bytes(content)
    with pytest.raises(ImportFileError, match="^error-import-file-extract-error: "):
        prepare(path)


def test_invalid_json_names_the_member(tmp_path):
    path = hostile(tmp_path, lambda a: add(a, "rooms/3/history.json", b'[{"UserMessage": {"id": ]'))
    with pytest.raises(ImportFileError, match="rooms/3/history.json is not valid JSON"):
        prepare(path)


def test_archive_without_hipchat_data_is_empty(tmp_path):
    path = make_tar(tmp_path / "e.tar.gz", {"readme.txt": b"hi", "other.json": []})
    with pytest.raises(ImportFileError, match="error-import-file-is-empty"):
        prepare(path)
