"""Fetching into a directory: the bytes, the name, and the file the caller gets."""

from __future__ import annotations

import pytest

from ferry.downloads.policy import DISK_FULL, WRITE_ERROR, FetchError
from tests.support.downloads import fetch, listing, run_python
from tests.support.remote import pattern_bytes

pytest_plugins = ("tests.support.download_fixtures",)


def test_a_big_file_arrives_byte_for_byte(remote, target_dir):
    size = 6 * 1024 * 1024 + 123
    url = remote.generated("/data/big.bin", size)
    progress: list[int] = []
    result = fetch(url, target_dir, on_progress=progress.append)
    assert result.path == target_dir / "big.bin"
    assert result.size == size
    assert result.path.read_bytes() == pattern_bytes(size)
    assert progress[-1] == size
    assert listing(target_dir) == ["big.bin"]


def test_headers_are_reported_before_the_body_with_the_chosen_name(remote, target_dir):
    header = ("Content-Disposition", "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf")
    url = remote.file("/get", b"x" * 10, [header]) + "?id=7"
    seen = []
    result = fetch(url, target_dir, on_headers=seen.append)
    info = seen[0]
    assert (info.status, info.content_length, info.filename) == (200, 10, "résumé.pdf")
    assert info.part_path.parent == target_dir and info.part_path.name.endswith(".part")
    assert result.path == target_dir / "résumé.pdf"


@pytest.mark.parametrize(
    "header",
    [
        'attachment; filename="../../escape.txt"',
        "attachment; filename=/tmp/escape.txt",
        "attachment; filename*=UTF-8''..%2F..%2Fescape.txt",
    ],
)
def test_hostile_content_disposition_stays_inside_the_directory(remote, target_dir, header):
    url = remote.file("/x", b"payload", [("Content-Disposition", header)])
    result = fetch(url, target_dir)
    assert result.path == target_dir / "escape.txt"
    assert listing(target_dir.parent) == ["files"]


def test_the_callers_name_wins(remote, target_dir):
    url = remote.file("/x.bin", b"1", [("Content-Disposition", "attachment; filename=header.bin")])
    assert fetch(url, target_dir, filename="chosen.bin").filename == "chosen.bin"


def test_a_missing_directory_is_a_write_error(remote, target_dir):
    with pytest.raises(FetchError) as caught:
        fetch(remote.file("/a", b"x"), target_dir / "gone")
    assert caught.value.code == WRITE_ERROR


DISK_FULL_CHILD = """
import os, resource, signal, sys
from pathlib import Path
from ferry.downloads.fetch import fetch_to_directory
from ferry.downloads.policy import FetchError, FetchPolicy
# With the file-size limit reached, writes fail with EFBIG as on a full quota.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
policy = FetchPolicy(allow_private_networks=True)
try:
    fetch_to_directory(sys.argv[1], Path(sys.argv[2]), policy=policy)
except FetchError as exc:
    print(exc.code)
print(sorted(os.listdir(sys.argv[2])))
"""


def test_a_full_disk_fails_cleanly(remote, target_dir):
    url = remote.generated("/big", 2_000_000)
    child = run_python(DISK_FULL_CHILD, url, str(target_dir))
    assert child.stdout.splitlines() == [DISK_FULL, "[]"], child.stderr
