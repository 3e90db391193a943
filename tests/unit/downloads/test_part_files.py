"""Publishing a finished part file: never over another file, and handed to the disk early."""

from __future__ import annotations

import threading

import pytest

from ferry.downloads import direct_io, names, part_files
from ferry.downloads.fetch_types import TransferTuning
from tests.support.downloads import fetch
from tests.support.remote import pattern_bytes

pytest_plugins = ("tests.support.download_fixtures",)


def test_existing_files_are_never_overwritten(remote, target_dir):
    (target_dir / "report.pdf").write_bytes(b"mine")
    (target_dir / "report (1).pdf").write_bytes(b"mine too")
    url = remote.file("/report.pdf", b"theirs")
    first = fetch(url, target_dir)
    second = fetch(url, target_dir)
    assert (first.filename, second.filename) == ("report (2).pdf", "report (3).pdf")
    assert (target_dir / "report.pdf").read_bytes() == b"mine"
    assert (target_dir / "report (1).pdf").read_bytes() == b"mine too"
    assert first.path.read_bytes() == b"theirs"


def test_a_much_taken_name_is_published_without_trying_every_taken_number(target_dir, monkeypatch):
    for number in range(200):
        (target_dir / names.numbered("index.html", number)).write_bytes(b"old")
    (target_dir / "index (57).html").unlink()
    part = target_dir / ".index.html.abc.part"
    part.write_bytes(b"new")
    claims = []
    real_claim = part_files._claim
    monkeypatch.setattr(
        part_files, "_claim", lambda p, t: claims.append(t.name) or real_claim(p, t)
    )
    path, name = part_files.publish(part, target_dir, "index.html")
    assert name == "index (57).html" and path.read_bytes() == b"new"
    assert claims == ["index.html", "index (57).html"]


def test_a_symlink_holding_the_name_is_not_followed(remote, target_dir, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep")
    (target_dir / "a.txt").symlink_to(outside)
    result = fetch(remote.file("/a.txt", b"new"), target_dir)
    assert result.filename == "a (1).txt"
    assert outside.read_bytes() == b"keep"


def test_concurrent_fetches_of_one_name_get_distinct_files(remote, target_dir):
    url = remote.generated("/same.bin", 300_000)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(fetch(url, target_dir))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.filename for r in results) == [
        "same (1).bin",
        "same (2).bin",
        "same (3).bin",
        "same.bin",
    ]
    assert all(r.path.read_bytes() == pattern_bytes(300_000) for r in results)


@pytest.mark.parametrize("announce", [True, False], ids=["spliced", "read"])
def test_written_windows_are_handed_to_the_disk_while_the_body_arrives(
    remote, target_dir, monkeypatch, announce
):
    # The final fsync then waits for the last window only, not for the whole file.
    handed: list[tuple[int, int]] = []

    def recording(fd, offset, length, flags):
        handed.append((offset, length))
        return 0

    monkeypatch.setattr(part_files, "_sync_file_range", recording)
    # Bytes written past the page cache have no writeback to hand over.
    monkeypatch.setattr(direct_io, "DIRECT_MIN_SIZE", 1 << 40)
    size = 5 * 1024 * 1024 + 11
    url = remote.generated("/data/window.bin", size, announce=announce)
    result = fetch(url, target_dir, tuning=TransferTuning(writeback_window=1 << 20))
    assert result.path.read_bytes() == pattern_bytes(size)
    # Contiguous windows of at least the window size, from the first byte on.
    assert handed and handed[0][0] == 0
    assert all(length >= 1 << 20 for _, length in handed)
    assert all(a + n == b for (a, n), (b, _) in zip(handed, handed[1:], strict=False))
    assert size - (1 << 20) <= handed[-1][0] + handed[-1][1] <= size
