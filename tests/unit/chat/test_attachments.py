"""Imported files: where they are stored, the attachment shapes, who may fetch them, and
the one-time move of files earlier versions kept in the served tree."""

from __future__ import annotations

import pytest

from ferry.chat.attachments import (
    Attachments,
    legacy_upload_id,
    message_attachment,
    upload_url,
)
from ferry.chat.reads import Reader, WorkspaceQueries
from ferry.kernel.errors import NotFound
from storage.store import Store
from storage.workspace import WorkspaceStore

MEMBER = Reader("u1", frozenset({"view-c-room"}))
OUTSIDER = Reader("u9", frozenset({"view-c-room"}))
ADMIN = Reader("admin", frozenset({"view-c-room", "view-room-administration"}))


@pytest.fixture
def setup(tmp_path):
    store = Store(tmp_path / "state", fsync=False)
    workspace = WorkspaceStore(store)
    workspace.insert_rooms([{"_id": "G1", "t": "p", "name": "secret"}])
    workspace.set_members("G1", ["u1"])
    files = Attachments(
        WorkspaceQueries(workspace),
        workspace,
        directory=tmp_path / "state" / "uploads",
        legacy_directory=tmp_path / "files" / "uploads",
    )
    yield files, workspace, tmp_path
    store.close()


def _stored(files: Attachments, name: str, content: bytes, rooms: set[str]) -> str:
    upload_id, directory, display = files.new_upload()
    assert display == f"file-upload/{upload_id}"
    (directory / name).write_bytes(content)
    url, _ = files.publish(upload_id, name, rooms, len(content))
    return url


def test_attachments_have_rocket_chats_shape_per_kind():
    url = upload_url("abc", "a photo.png")
    assert url == "/file-upload/abc/a%20photo.png"
    assert message_attachment("a photo.png", url, "image/png", 7, {"width": 3, "height": 2}) == {
        "type": "file",
        "title": "a photo.png",
        "title_link": url,
        "image_url": url,
        "image_type": "image/png",
        "image_size": 7,
        "image_dimensions": {"width": 3, "height": 2},
    }
    assert message_attachment("a.ogg", "/u", "audio/ogg", None)["audio_url"] == "/u"
    assert message_attachment("a.txt", "/u", "text/plain", 3) == {
        "type": "file",
        "title": "a.txt",
        "title_link": "/u",
    }


def test_a_file_is_handed_only_to_who_may_read_one_of_its_rooms(setup):
    files, workspace, _ = setup
    url = _stored(files, "plan.txt", b"plan", {"G1"})
    upload_id = url.split("/")[2]
    assert files.file_for(MEMBER, upload_id).read_bytes() == b"plan"
    assert files.file_for(ADMIN, upload_id).read_bytes() == b"plan"
    with pytest.raises(NotFound):
        files.file_for(OUTSIDER, upload_id)
    workspace.set_members("G1", ["u9"])
    assert files.file_for(OUTSIDER, upload_id).read_bytes() == b"plan"


@pytest.mark.parametrize("upload_id", ["nothing", "../uploads", "a/b", "", "x" * 65])
def test_unknown_or_malformed_ids_are_not_found(setup, upload_id):
    files, _, _ = setup
    with pytest.raises(NotFound):
        files.file_for(ADMIN, upload_id)


def test_a_record_never_leads_outside_its_own_folder(setup):
    files, workspace, tmp_path = setup
    (tmp_path / "state" / "secret.json").write_text("{}")
    for name in ("../../secret.json", ".hidden", "link"):
        upload_id, directory, _ = files.new_upload()
        if name == "link":
            (directory / name).symlink_to(tmp_path / "state" / "secret.json")
        workspace.save_upload({"_id": upload_id, "name": name, "rooms": ["G1"]})
        with pytest.raises(NotFound):
            files.file_for(ADMIN, upload_id)


def _legacy_workspace(workspace, legacy, count):
    messages = []
    for i in range(count):
        url = f"/uploads/F.{i}/f{i}.txt"
        (legacy / f"F{i}").mkdir(parents=True)
        (legacy / f"F{i}" / f"f{i}.txt").write_text(f"file {i}")
        messages.append(
            {
                "_id": f"m{i}",
                "rid": "G1",
                "msg": "",
                "ts": "2024-01-01T00:00:00.000Z",
                "_sort": i,
                "u": {"_id": "u1"},
                "_importFile": {"id": f"F.{i}", "rocketChatUrl": url, "downloaded": True},
                "attachments": [{"title": f"f{i}.txt", "title_link": url}],
            }
        )
    workspace.upsert_messages(messages)


def test_moving_the_served_trees_files_survives_a_crash_midway(setup, monkeypatch):
    files, workspace, tmp_path = setup
    legacy = tmp_path / "files" / "uploads"
    _legacy_workspace(workspace, legacy, 3)
    real_move = Attachments._move_legacy_file
    moves = []

    def crash_on_the_second_file(self, path, relative, room_ids):
        moves.append(relative)
        if len(moves) == 2:
            # Recorded, not yet moved: the worst moment for the process to die.
            self.publish(legacy_upload_id(relative), path.name, room_ids, None)
            raise OSError("the power went out")
        real_move(self, path, relative, room_ids)

    monkeypatch.setattr(Attachments, "_move_legacy_file", crash_on_the_second_file)
    with pytest.raises(OSError):
        files.move_legacy_uploads()
    monkeypatch.setattr(Attachments, "_move_legacy_file", real_move)

    assert files.move_legacy_uploads() == 2  # the two the crash left behind
    assert not legacy.exists()
    for i, message in enumerate(workspace.messages("G1")):
        upload_id = legacy_upload_id(f"F{i}/f{i}.txt")
        assert message["attachments"][0]["title_link"] == f"/file-upload/{upload_id}/f{i}.txt"
        assert files.file_for(MEMBER, upload_id).read_text() == f"file {i}"
    assert files.move_legacy_uploads() == 0
