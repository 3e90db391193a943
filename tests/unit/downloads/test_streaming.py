"""The body into the part file: spliced or read, capped, and in segments where the server
takes byte ranges."""

from __future__ import annotations

import dataclasses
import threading

from ferry.downloads import direct_io, streaming
from ferry.downloads.fetch_types import SEGMENTS, TransferTuning
from ferry.downloads.policy import DOWNLOAD_CANCELLED, FILE_TOO_LARGE, NETWORK_ERROR
from tests.support.downloads import LOCAL, fetch, fetch_failure, listing
from tests.support.remote import pattern_bytes

pytest_plugins = ("tests.support.download_fixtures",)

# Files of 1 MiB and more are fetched in segments.
SEGMENTED = TransferTuning(segmented_min_size=1 << 20, segment_probe_seconds=0)


def test_plain_http_bodies_of_known_length_are_spliced_in_the_kernel(
    remote, target_dir, monkeypatch
):
    spliced: list[int] = []
    real = streaming._splice_rest

    def counting(*args, **kwargs):
        spliced.append(kwargs["total"] - kwargs["size"])
        return real(*args, **kwargs)

    monkeypatch.setattr(streaming, "_splice_rest", counting)
    # Where the data directory takes O_DIRECT, a body this big would go past the cache.
    monkeypatch.setattr(direct_io, "DIRECT_MIN_SIZE", 1 << 40)
    size = 3 * 1024 * 1024 + 7
    result = fetch(remote.generated("/data/spliced.bin", size), target_dir)
    assert result.path.read_bytes() == pattern_bytes(size)
    assert spliced and 0 < spliced[0] < size


def test_truncated_bodies_fail_and_leave_nothing(remote, target_dir):
    error = fetch_failure(remote.truncated("/cut", announced=100_000, sent=40_000), target_dir)
    assert error.code == NETWORK_ERROR
    assert "40000 of 100000" in error.message
    assert listing(target_dir) == []


def test_bytes_beyond_the_content_length_are_not_saved(remote, target_dir):
    def overlong(h):
        h.send_head(200, [("Content-Length", "1000")])
        h.wfile.write(pattern_bytes(50_000))

    result = fetch(remote.route("/more", overlong), target_dir)
    assert result.size == 1000
    assert (target_dir / result.filename).read_bytes() == pattern_bytes(1000)
    assert listing(target_dir) == [result.filename]


def test_announced_size_over_the_limit_is_refused_before_writing(remote, target_dir):
    policy = dataclasses.replace(LOCAL, max_size=1000)
    error = fetch_failure(remote.generated("/big", 5000), target_dir, policy)
    assert error.code == FILE_TOO_LARGE
    assert "5000 bytes" in error.message
    assert listing(target_dir) == []


def test_size_limit_holds_for_chunked_bodies_without_a_length(remote, target_dir):
    policy = dataclasses.replace(LOCAL, max_size=1_000_000)
    chunked = remote.generated("/chunked", 3_000_000, announce=False)
    assert fetch_failure(chunked, target_dir, policy).code == FILE_TOO_LARGE
    assert fetch_failure(remote.endless("/endless"), target_dir, policy).code == FILE_TOO_LARGE
    assert listing(target_dir) == []


def test_size_limit_admits_a_file_of_exactly_that_size(remote, target_dir):
    policy = dataclasses.replace(LOCAL, max_size=4096)
    assert fetch(remote.generated("/exact", 4096, announce=False), target_dir, policy).size == 4096


# --- segmented downloads ------------------------------------------------------------------


def ranges_asked(remote) -> list[str | None]:
    return sorted((r.headers.get("Range") or "") for r in remote.requests)


def test_a_ranged_file_arrives_in_segments_byte_for_byte(remote, target_dir):
    size = 3 * 1024 * 1024 + 7
    url = remote.ranged("/big.bin", size)
    seen = []
    result = fetch(url, target_dir, on_progress=seen.append, tuning=SEGMENTED)
    assert result.size == size
    assert (target_dir / "big.bin").read_bytes() == pattern_bytes(size)
    assert listing(target_dir) == ["big.bin"]
    assert len(remote.requests) == SEGMENTS
    assert remote.connections == SEGMENTS
    assert ranges_asked(remote)[0] == ""  # the first request asks for the whole file
    assert seen[-1] == size and seen == sorted(seen)


# Files of 1 MiB and more are read alone for a moment first, then segmented when slow.
PROBED = TransferTuning(
    segmented_min_size=1 << 20, segment_probe_seconds=0.2, segment_below_rate=8 << 20
)


def test_a_fast_source_is_read_over_its_one_connection(remote, target_dir):
    size = 5 * 1024 * 1024 + 3
    seen = []
    result = fetch(
        remote.ranged("/fast.bin", size), target_dir, on_progress=seen.append, tuning=PROBED
    )
    assert (target_dir / result.filename).read_bytes() == pattern_bytes(size)
    assert ranges_asked(remote) == [""]
    assert seen[-1] == size and seen == sorted(seen)


def test_a_segmentable_file_read_alone_is_announced_as_written_in_order(remote, target_dir):
    size = 5 * 1024 * 1024
    url = remote.ranged("/fast.bin", size, validators=[("ETag", '"v1"')])
    announced, again = [], []
    fetch(
        url,
        target_dir,
        tuning=PROBED,
        on_headers=lambda info: announced.append(info.resumable),
        on_resumable=again.append,
    )
    (first,) = announced
    assert len(first.starts) > 1
    assert again == [dataclasses.replace(first, starts=(0,))]


def test_a_slow_connection_gets_the_rest_fetched_in_segments(remote, target_dir):
    # 64 KiB every 20 ms is about 3 MiB/s, under the 8 MiB/s that reads on alone.
    size = 4 * 1024 * 1024 - 5
    seen = []
    url = remote.ranged("/slow.bin", size, pause=0.02, validators=[("ETag", '"v1"')])
    again = []
    result = fetch(
        url, target_dir, on_progress=seen.append, tuning=PROBED, on_resumable=again.append
    )
    assert again == []  # the segments stand as announced
    assert result.path.read_bytes() == pattern_bytes(size)
    assert len(remote.requests) == SEGMENTS
    assert ranges_asked(remote)[0] == ""
    # The first connection read on to the end of its segment while the others ran.
    assert len(set(ranges_asked(remote))) == SEGMENTS
    assert seen[-1] == size and seen == sorted(seen)


def test_a_server_that_ignores_ranges_is_read_over_one_connection(remote, target_dir):
    size = 2 * 1024 * 1024
    url = remote.ranged("/big.bin", size, honour_range=False)
    assert fetch(url, target_dir, tuning=SEGMENTED).size == size
    assert (target_dir / "big.bin").read_bytes() == pattern_bytes(size)
    assert listing(target_dir) == ["big.bin"]


def test_small_files_are_never_segmented(remote, target_dir):
    url = remote.ranged("/small.bin", 500_000)
    fetch(url, target_dir, tuning=SEGMENTED)
    assert ranges_asked(remote) == [""]


def test_segmented_download_is_capped_before_any_body(remote, target_dir):
    url = remote.ranged("/big.bin", 2 * 1024 * 1024)
    policy = dataclasses.replace(LOCAL, max_size=1024 * 1024)
    assert fetch_failure(url, target_dir, policy, tuning=SEGMENTED).code == FILE_TOO_LARGE
    assert len(remote.requests) == 1


def test_cancel_ends_every_segment_and_leaves_nothing(remote, target_dir):
    url = remote.ranged("/slow.bin", 4 * 1024 * 1024, pause=0.05)
    cancel = threading.Event()
    started = threading.Event()

    def progress(size: int) -> None:
        if size > 256 * 1024:
            started.set()

    def cancel_soon() -> None:
        started.wait(20)
        cancel.set()

    threading.Thread(target=cancel_soon, daemon=True).start()
    error = fetch_failure(url, target_dir, cancel=cancel, on_progress=progress, tuning=SEGMENTED)
    assert error.code == DOWNLOAD_CANCELLED
    assert listing(target_dir) == []
    assert len(remote.requests) == SEGMENTS


def test_a_segment_cut_short_fails_the_whole_download(remote, target_dir):
    size = 2 * 1024 * 1024

    def handler(h) -> None:
        asked = h.headers.get("Range")
        if asked is None:
            h.send_head(200, [("Content-Length", str(size)), ("Accept-Ranges", "bytes")])
            h.wfile.write(pattern_bytes(size))
            return
        first, _, last = asked[len("bytes=") :].partition("-")
        length = int(last) - int(first) + 1
        h.send_head(
            206,
            [("Content-Length", str(length)), ("Content-Range", f"bytes {first}-{last}/{size}")],
        )
        h.wfile.write(pattern_bytes(length // 2, int(first)))

    url = remote.route("/cut.bin", handler)
    assert fetch_failure(url, target_dir, tuning=SEGMENTED).code == NETWORK_ERROR
    assert listing(target_dir) == []
