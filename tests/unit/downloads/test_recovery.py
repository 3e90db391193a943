"""What a crash left behind: closed as stopped, or resumed where the record and its part
file vouch for it."""

from __future__ import annotations

import pytest

from ferry.downloads.fetch_types import TransferTuning
from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import (
    SERVER_STOPPED,
)
from storage.downloads import DownloadRepository
from storage.store import Store
from tests.support.downloads import LOCAL, listing, run_python
from tests.support.remote import pattern_bytes, wait_until

pytest_plugins = ("tests.support.download_fixtures",)


CRASHING_CHILD = """
import os, sys, time
from pathlib import Path
from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import FetchPolicy
from storage.downloads import DownloadRepository
from storage.store import Store
repository = DownloadRepository(Store(Path(sys.argv[1])))
manager = DownloadManager(repository, FetchPolicy(allow_private_networks=True))
manager.startup()
handle = manager.start(sys.argv[2], Path(sys.argv[3]), "files")
handle.wait_for_headers(10)
while manager.get(handle.id)["current_size"] == 0:
    time.sleep(0.01)
print(handle.id, flush=True)
os._exit(9)
"""


def test_recover_closes_what_a_crash_left_behind(remote, target_dir, tmp_path):
    state = tmp_path / "crashed-state"
    innocent = target_dir / ".someone-elses.bin.0123abcd.part"
    innocent.write_bytes(b"not ours")
    child = run_python(CRASHING_CHILD, str(state), remote.stall("/stall"), str(target_dir))
    crashed_id = child.stdout.strip()
    assert child.returncode == 9, child.stderr
    assert len([n for n in listing(target_dir) if n.endswith(".part")]) == 2

    store = Store(state, fsync=False)
    try:
        manager = DownloadManager(DownloadRepository(store), LOCAL)
        assert manager.startup() == [crashed_id]
        record = manager.get(crashed_id)
        assert (record["status"], record["error"], record["total_bytes"]) == (
            "failed",
            SERVER_STOPPED,
            None,
        )
        assert manager.history()[0]["id"] == crashed_id
        assert listing(target_dir) == [innocent.name]
        assert manager.startup() == []
        manager.shutdown(timeout=5)
    finally:
        store.close()


RESUMABLE_CRASHING_CHILD = """
import os, sys, time
from pathlib import Path
from ferry.downloads.fetch_types import TransferTuning
from ferry.downloads.manager import DownloadManager
from ferry.downloads.policy import FetchPolicy
from storage.downloads import DownloadRepository
from storage.store import Store
tuning = TransferTuning(
    segmented_min_size=1 << 20,
    segment_alignment=1 << 18,
    checkpoint_after_bytes=1,
    segment_probe_seconds=0,
)
repository = DownloadRepository(Store(Path(sys.argv[1])))
manager = DownloadManager(repository, FetchPolicy(allow_private_networks=True), tuning=tuning)
manager.startup()
handle = manager.start(sys.argv[2], Path(sys.argv[3]), "files")
handle.wait_for_headers(10)
# Until half the file is written and the record that says how to resume it is on disk
# (the repository shows durable records only).
while (
    manager.get(handle.id)["current_size"] < int(sys.argv[4])
    or (repository.get(handle.id) or {}).get("status") != "downloading"
):
    time.sleep(0.01)
print(handle.id, flush=True)
os._exit(9)
"""


class Recorder:
    def __init__(self):
        self.resumed: list[str] = []

    def download_started(self, record: dict) -> None:
        pass

    def download_answered(self, record: dict) -> None:
        pass

    def download_resumed(self, record: dict) -> None:
        self.resumed.append(record["id"])

    def download_finished(self, record: dict) -> None:
        pass


@pytest.mark.parametrize("resume", [True, False])
def test_recover_goes_on_with_a_download_the_server_can_resume(
    remote, target_dir, tmp_path, resume
):
    size = 1 << 20
    url = remote.ranged("/big.bin", size, pause=0.2, validators=[("ETag", '"v1"')])
    state = tmp_path / "crashed-state"
    child = run_python(RESUMABLE_CRASHING_CHILD, str(state), url, str(target_dir), str(size // 2))
    crashed_id = child.stdout.strip()
    assert child.returncode == 9, child.stderr
    assert len([n for n in listing(target_dir) if n.endswith(".part")]) == 1
    asked_before = len(remote.requests)
    remote.ranged("/big.bin", size, validators=[("ETag", '"v1"')])  # no longer slow

    store = Store(state, fsync=False)
    recorder = Recorder()
    try:
        manager = DownloadManager(
            DownloadRepository(store),
            LOCAL,
            listener=recorder,
            tuning=TransferTuning(resume_margin=1 << 16),
        )
        if not resume:
            assert manager.startup() == [crashed_id]
            assert manager.get(crashed_id)["error"] == SERVER_STOPPED
            assert listing(target_dir) == []
            return
        assert manager.startup(resume=True) == []
        assert recorder.resumed == [crashed_id]
        assert wait_until(lambda: manager.get(crashed_id)["status"] == "completed")
        record = manager.get(crashed_id)
        assert (record["total_bytes"], record["error"], record["file_path"]) == (
            size,
            None,
            "files/big.bin",
        )
        assert manager.history()[0]["id"] == crashed_id
        assert listing(target_dir) == ["big.bin"]
        assert (target_dir / "big.bin").read_bytes() == pattern_bytes(size)
        again = remote.requests[asked_before:]
        assert again and all(r.headers.get("If-Range") == '"v1"' for r in again)
        fetched = sum(
            int(last) - int(first) + 1
            for first, last in (r.headers["Range"][6:].split("-") for r in again)
        )
        assert fetched < size  # what the crashed run had written was kept
        manager.shutdown(timeout=5)
    finally:
        store.close()


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda record, part: record["_local"].update(timeout=-1), id="timeout"),
        pytest.param(lambda record, part: record.update(kind="import"), id="import-kind"),
        pytest.param(lambda record, part: record["_local"].update(resume=None), id="no-validator"),
        pytest.param(lambda record, part: record["_local"].update(tag="ffff"), id="other-tag"),
        pytest.param(
            lambda record, part: record["_local"].update(
                part_path=str(part.parent.parent / part.name)
            ),
            id="outside",
        ),
        pytest.param(lambda record, part: part.unlink(), id="part-gone"),
        pytest.param(
            lambda record, part: (
                part.parent.rename(part.parent.with_name("moved")),
                part.parent.symlink_to(part.parent.with_name("moved")),
            ),
            id="symlinked-directory",
        ),
    ],
)
def test_recover_resumes_only_what_its_record_and_part_file_vouch_for(
    store, remote, target_dir, spoil
):
    url = remote.ranged("/big.bin", 1000, validators=[("ETag", '"v1"')])
    target_dir = target_dir.resolve()  # as a download's directory is recorded
    part = target_dir / ".big.bin.00112233aabb.part"
    part.write_bytes(pattern_bytes(500))
    record = {
        "id": "d1",
        "kind": "file",
        "filename": "big.bin",
        "file_path": "files/big.bin",
        "directory": "files",
        "url": url,
        "status": "downloading",
        "current_size": 0,
        "expected_size": 1000,
        "progress_percentage": 0.0,
        "start_time": 1,
        "_local": {
            "directory": str(target_dir),
            "part_path": str(part),
            "tag": "00112233aabb",
            "requested_name": None,
            "timeout": 30,
            "resume": {"length": 1000, "validator": '"v1"', "starts": [0]},
        },
    }
    repository = DownloadRepository(store)
    repository.save(record)
    manager = DownloadManager(repository, LOCAL)
    try:
        assert manager.startup(resume=True) == []  # as recorded, it resumes
        assert wait_until(lambda: manager.get("d1")["status"] == "completed")
        assert (target_dir / "big.bin").read_bytes() == pattern_bytes(1000)

        (target_dir / "big.bin").unlink()
        part.write_bytes(pattern_bytes(500))
        spoil(record, part)
        repository.save({**record, "status": "downloading"})
        assert manager.startup(resume=True) == ["d1"]
        assert (manager.get("d1")["status"], manager.get("d1")["error"]) == (
            "failed",
            SERVER_STOPPED,
        )
    finally:
        manager.shutdown(timeout=5)
