"""Races on the tree: an upload and a download publishing one name, a delete under a zip."""

import io
import zipfile

import pytest

from ferry.files import FileTree
from ferry.files.edits import FileEdits
from ferry.files.reading import zip_stream
from ferry.kernel.errors import Conflict


@pytest.fixture
def edits(tmp_path):
    return FileEdits(FileTree(tmp_path / "files"), lambda: [])


def test_a_file_published_during_an_upload_is_never_overwritten(edits):
    upload = edits.begin_upload("inbox/data.csv", overwrite=False, limit=100)
    upload.write(b"uploaded")
    # A download finishes under the same name while the upload's body still arrives.
    (edits.tree.root / "inbox" / "data.csv").write_bytes(b"downloaded")
    with pytest.raises(Conflict):
        upload.publish()
    assert (edits.tree.root / "inbox" / "data.csv").read_bytes() == b"downloaded"
    assert [p.name for p in (edits.tree.root / "inbox").iterdir()] == ["data.csv"]


def test_an_upload_over_its_limit_leaves_no_part(edits):
    upload = edits.begin_upload("big.bin", overwrite=False, limit=4)
    with pytest.raises(OverflowError):
        upload.write(b"12345")
    upload.abort()
    assert list(edits.tree.root.iterdir()) == []


def test_deleting_a_folder_while_it_is_zipped_ends_a_valid_archive(edits):
    root = edits.tree.root
    for folder in ("a", "b", "c"):
        (root / "share" / folder).mkdir(parents=True)
        (root / "share" / folder / "file.bin").write_bytes(folder.encode() * 600_000)
    stream = zip_stream(root / "share")
    received = [next(stream)]
    edits.delete("share", recursive=True)
    received.extend(stream)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(received)))
    assert archive.testzip() is None
    assert {info.filename for info in archive.infolist()} <= {
        "a/",
        "a/file.bin",
        "b/",
        "b/file.bin",
        "c/",
        "c/file.bin",
    }


def test_cancelling_an_upload_another_request_appends_to_is_refused(edits):
    writing = edits.resume_upload("big.bin", overwrite=False, total=100)
    writing.write(b"12345")
    with pytest.raises(Conflict):
        edits.cancel_upload("big.bin")
    writing.pause()
    assert edits.uploaded_so_far("big.bin") == 5
    assert edits.cancel_upload("big.bin") is True
    assert edits.uploaded_so_far("big.bin") is None
    assert edits.cancel_upload("big.bin") is False
