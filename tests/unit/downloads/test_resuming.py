"""Going on with a download a crash cut short: only the missing bytes, and only when the
server proves the file unchanged; anything else starts over or fails cleanly."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from ferry.downloads.fetch import fetch_to_directory
from ferry.downloads.fetch_types import PartialFile, Resumable, TransferTuning
from ferry.downloads.policy import FILE_TOO_LARGE, REMOTE_FILE_NOT_FOUND, FetchError
from ferry.downloads.resuming import missing_ranges, present_ranges, reports_holes
from tests.support.downloads import LOCAL, listing
from tests.support.remote import pattern_bytes

pytest_plugins = ("tests.support.download_fixtures",)

KIB = 1024
SEGMENT = 256 * KIB
SIZE = 4 * SEGMENT  # four whole segments under TUNING
MARGIN = 64 * KIB
ETAG = '"v1"'
TUNING = TransferTuning(
    segmented_min_size=SIZE,
    segment_alignment=SEGMENT,
    resume_margin=MARGIN,
    segment_probe_seconds=0,
)


def resume_fetch(url, directory, *, policy=LOCAL, **kwargs):
    """A fetch with this file's small segments and resume margin."""
    return fetch_to_directory(url, directory, policy=policy, tuning=TUNING, **kwargs)


@pytest.fixture
def holes(target_dir):
    if not reports_holes(target_dir, SEGMENT):
        pytest.skip("this file system does not report holes")


def crashed_part(directory: Path, written: dict[int, int], content: bytes) -> Path:
    """A part file as a crash leaves it: `written[start]` bytes of `content` from each
    segment start, holes elsewhere."""
    part = directory / ".big.bin.0123456789ab.part"
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        for start, count in written.items():
            os.pwrite(fd, content[start : start + count], start)
    finally:
        os.close(fd)
    return part


IN_SEGMENTS = (0, SEGMENT, 2 * SEGMENT, 3 * SEGMENT)


def partial(part: Path, *, segmented: bool = True, validator: str = ETAG) -> PartialFile:
    return PartialFile(
        part, "big.bin", Resumable(SIZE, validator, IN_SEGMENTS if segmented else (0,))
    )


def ranges_asked(remote) -> list[tuple[str, str | None]]:
    return [(r.headers.get("Range"), r.headers.get("If-Range")) for r in remote.requests]


def test_missing_ranges_begin_a_margin_before_each_segments_first_hole(target_dir, holes):
    part = crashed_part(
        target_dir,
        {0: 100_000, SEGMENT: SEGMENT, 3 * SEGMENT: 10},  # the third segment never began
        pattern_bytes(SIZE),
    )
    fd = os.open(part, os.O_RDONLY)
    try:
        missing = missing_ranges(fd, Resumable(SIZE, ETAG, IN_SEGMENTS), MARGIN)
    finally:
        os.close(fd)
    first_hole = -(-100_000 // 4096) * 4096  # holes start on block boundaries
    assert missing == [
        (first_hole - MARGIN, SEGMENT - (first_hole - MARGIN)),
        (2 * SEGMENT - MARGIN, MARGIN),  # whole, but its last block may be part-written
        (2 * SEGMENT, SEGMENT),
        (3 * SEGMENT, SEGMENT),  # 10 bytes are less than the margin
    ]


def test_only_the_missing_bytes_are_fetched_and_the_file_is_whole(remote, target_dir, holes):
    url = remote.ranged("/big.bin", SIZE, validators=[("ETag", ETAG)])
    content = pattern_bytes(SIZE)
    part = crashed_part(target_dir, {0: 200_000, SEGMENT: 150_000, 2 * SEGMENT: SEGMENT}, content)
    answered, seen = [], []
    result = resume_fetch(
        url,
        target_dir,
        policy=LOCAL,
        partial=partial(part),
        on_headers=answered.append,
        on_progress=seen.append,
    )
    assert (result.path, result.size) == (target_dir / "big.bin", SIZE)
    assert result.path.read_bytes() == content
    assert listing(target_dir) == ["big.bin"]
    asked = sorted(ranges_asked(remote))
    assert all(condition == ETAG for _, condition in asked)
    starts = sorted(int(r.split("=")[1].split("-")[0]) for r, _ in asked)
    assert starts == [
        200_704 - MARGIN,
        SEGMENT + 151_552 - MARGIN,
        3 * SEGMENT - MARGIN,
        3 * SEGMENT,
    ]
    (info,) = answered
    fetched = sum(int(r.split("-")[1]) - int(r.split("=")[1].split("-")[0]) + 1 for r, _ in asked)
    assert (info.status, info.content_length, info.present) == (206, SIZE, SIZE - fetched)
    assert seen[0] > info.present and seen[-1] == SIZE


def test_a_file_written_in_order_resumes_without_holes_to_read(remote, target_dir):
    url = remote.ranged("/big.bin", SIZE, validators=[("ETag", ETAG)])
    content = pattern_bytes(SIZE)
    part = crashed_part(target_dir, {0: 300_000}, content)
    result = resume_fetch(url, target_dir, policy=LOCAL, partial=partial(part, segmented=False))
    assert result.path.read_bytes() == content
    assert ranges_asked(remote) == [(f"bytes={300_000 - MARGIN}-{SIZE - 1}", ETAG)]


def test_a_segmentable_file_read_alone_past_its_first_segment_resumes_whole(
    remote, target_dir, holes
):
    # A fast first connection reads on alone, in order, across the segment starts the
    # record names; a crash there leaves the later segments empty, not holed.
    url = remote.ranged("/big.bin", SIZE, validators=[("ETag", ETAG)])
    content = pattern_bytes(SIZE)
    part = crashed_part(target_dir, {0: SEGMENT + 100_000}, content)
    result = resume_fetch(url, target_dir, policy=LOCAL, partial=partial(part))
    assert result.path.read_bytes() == content
    starts = sorted(int(r.split("=")[1].split("-")[0]) for r, _ in ranges_asked(remote))
    first_hole = SEGMENT + 100_000  # where the file ends
    assert starts == [SEGMENT - MARGIN, first_hole - MARGIN, 2 * SEGMENT, 3 * SEGMENT]


@pytest.mark.parametrize(
    "server",
    [
        pytest.param({"validators": [("ETag", '"v2"')], "version": 2}, id="changed"),
        pytest.param({"validators": [("ETag", ETAG)], "honour_range": False}, id="no-ranges"),
    ],
)
def test_a_file_that_cannot_be_resumed_is_fetched_whole_again(remote, target_dir, server):
    url = remote.ranged("/big.bin", SIZE, **server)
    stale = crashed_part(target_dir, {0: 300_000}, b"s" * SIZE)
    result = resume_fetch(url, target_dir, policy=LOCAL, partial=partial(stale, segmented=False))
    assert result.path.read_bytes() == pattern_bytes(SIZE, server.get("version", 0) * 7919)
    assert listing(target_dir) == ["big.bin"]
    assert ranges_asked(remote)[0] == (f"bytes={300_000 - MARGIN}-{SIZE - 1}", ETAG)
    assert (None, None) in ranges_asked(remote)  # then the whole file, unconditionally


def test_a_shorter_file_is_fetched_whole_again(remote, target_dir):
    url = remote.ranged("/big.bin", 1000, validators=[("ETag", ETAG)])
    stale = crashed_part(target_dir, {0: 300_000}, b"s" * SIZE)
    result = resume_fetch(url, target_dir, policy=LOCAL, partial=partial(stale, segmented=False))
    assert result.path.read_bytes() == pattern_bytes(1000)


def test_a_vanished_part_file_means_starting_over(remote, target_dir):
    url = remote.ranged("/big.bin", SIZE, validators=[("ETag", ETAG)])
    gone = target_dir / ".big.bin.0123456789ab.part"
    result = resume_fetch(url, target_dir, policy=LOCAL, partial=partial(gone))
    assert result.path.read_bytes() == pattern_bytes(SIZE)


@pytest.mark.parametrize("cause", ["gone", "too-large"])
def test_a_resume_that_fails_leaves_no_part_file(remote, target_dir, cause):
    policy = LOCAL
    if cause == "gone":
        url = remote.status("/big.bin", 404)
    else:
        url = remote.ranged("/big.bin", SIZE, validators=[("ETag", ETAG)])
        policy = dataclasses.replace(LOCAL, max_size=SIZE - 1)
    part = crashed_part(target_dir, {0: 300_000}, pattern_bytes(SIZE))
    with pytest.raises(FetchError) as caught:
        resume_fetch(url, target_dir, policy=policy, partial=partial(part, segmented=False))
    assert caught.value.code == {"gone": REMOTE_FILE_NOT_FOUND, "too-large": FILE_TOO_LARGE}[cause]
    assert listing(target_dir) == []


DATE = "Sun, 22 Nov 2026 10:00:00 GMT"
HOUR_BEFORE = "Sun, 22 Nov 2026 09:00:00 GMT"


@pytest.mark.parametrize(
    ("headers", "validator"),
    [
        ([("ETag", ETAG)], ETAG),
        ([("ETag", 'W/"weak"')], None),  # If-Range takes strong validators only
        ([("Last-Modified", HOUR_BEFORE), ("Date", DATE)], HOUR_BEFORE),
        ([("Last-Modified", DATE), ("Date", DATE)], None),  # could change within the second
        ([("Last-Modified", HOUR_BEFORE)], None),  # no Date to tell
        ([], None),
    ],
)
def test_a_download_is_resumable_only_with_a_strong_validator(
    remote, target_dir, headers, validator
):
    url = remote.ranged("/big.bin", SIZE, validators=headers)
    answered = []
    resume_fetch(url, target_dir, policy=LOCAL, on_headers=answered.append)
    expected = None if validator is None else Resumable(SIZE, validator, IN_SEGMENTS)
    assert answered[0].resumable == expected


def test_the_bytes_a_resume_hashes_from_disk_are_those_it_does_not_fetch_again():
    missing = [(100, 50), (300, 100), (900, 100)]
    assert present_ranges(missing, 1000) == [(0, 100), (150, 150), (400, 500)]
    assert present_ranges([(0, 1000)], 1000) == []
    assert present_ranges([(600, 400)], 1000) == [(0, 600)]
