"""Abandoned upload part files are swept; anything else, and uploads being written, stay."""

import fcntl
import os
import time

import pytest

from ferry.files import FileTree
from ferry.files.edits import FileEdits, part_name
from ferry.files.part_sweep import PartSweeper, sweep_abandoned_parts

DAY = 24 * 3600
# Only a safety net for the sweeper's thread, never a measure.
GIVE_UP_SECONDS = 30


def _aged(path, seconds=2 * DAY):
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp), follow_symlinks=False)
    return path


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "files"
    (root / "deep" / "er").mkdir(parents=True)
    return root


def test_old_parts_go_and_fresh_ones_stay(root):
    patch_part = root / "deep" / "er" / part_name("a.bin")
    patch_part.write_bytes(b"half")
    _aged(patch_part)
    put_part = root / f"{part_name('b.bin')}-0123456789ab"
    put_part.write_bytes(b"cut off")
    _aged(put_part)
    fresh = root / part_name("c.bin")
    fresh.write_bytes(b"recent")
    removed = sweep_abandoned_parts(root, DAY)
    assert sorted(removed) == sorted([patch_part, put_part])
    assert not patch_part.exists() and not put_part.exists()
    assert fresh.read_bytes() == b"recent"


def test_only_upload_parts_are_touched(root, tmp_path):
    kept = {
        "visible": root / "report.pdf",
        # A download's part file of a file named like an upload's part.
        "download part": root / f".{part_name('x')}.0a1b2c.part",
        "hidden": root / ".ferry-upload-notes",
    }
    for path in kept.values():
        path.write_bytes(b"keep")
        _aged(path)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / part_name("y")
    target.write_bytes(b"outside the root")
    _aged(target)
    (root / "linked").symlink_to(outside)
    (root / part_name("z")).symlink_to(target)
    assert sweep_abandoned_parts(root, DAY) == []
    assert all(path.read_bytes() == b"keep" for path in kept.values())
    assert target.read_bytes() == b"outside the root"


def test_a_part_being_written_is_never_removed(root):
    part = root / part_name("busy.bin")
    part.write_bytes(b"in progress")
    _aged(part)
    with open(part, "ab") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        assert sweep_abandoned_parts(root, DAY) == []
    assert part.exists()
    assert sweep_abandoned_parts(root, DAY) == [part]


def test_uploads_hold_their_parts_against_the_sweep(root):
    edits = FileEdits(FileTree(root), busy_directories=list)
    resumed = edits.resume_upload("deep/r.bin", overwrite=False, total=10)
    resumed.write(b"12345")
    put = edits.begin_upload("deep/p.bin", overwrite=False, limit=100)
    put.write(b"abc")
    for path in (resumed.part, put.part):
        _aged(path)
    assert sweep_abandoned_parts(root, DAY) == []
    resumed.pause()
    assert put.publish() is False
    assert (root / "deep" / "p.bin").read_bytes() == b"abc"
    # Paused and untouched for a day: abandoned, and the next append starts afresh.
    _aged(resumed.part)
    assert sweep_abandoned_parts(root, DAY) == [resumed.part]
    again = edits.resume_upload("deep/r.bin", overwrite=False, total=10)
    assert again.size == 0
    again.pause()


def test_the_sweeper_sweeps_when_started_and_again_after_its_interval(root):
    sweeper = PartSweeper(root, DAY, interval=0.01)
    first = root / part_name("one")
    first.write_bytes(b"1")
    _aged(first)
    assert sweeper.sweeps == 0 and first.exists()  # building it swept nothing
    sweeper.start()
    try:
        assert sweeper.wait_for_sweeps(1, GIVE_UP_SECONDS)
        assert not first.exists()
        second = root / part_name("two")
        second.write_bytes(b"2")
        _aged(second)
        seen = sweeper.sweeps
        assert sweeper.wait_for_sweeps(seen + 2, GIVE_UP_SECONDS)
        assert not second.exists()
    finally:
        sweeper.stop()
