"""Big bodies written past the page cache: byte for byte, hashed, and failing the way
every other read fails."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import socket
import threading

import pytest

from ferry.downloads import direct_io
from ferry.downloads.digests import FileDigest
from ferry.downloads.fetch import fetch_to_directory
from ferry.downloads.fetch_types import TransferTuning
from ferry.downloads.movers import BodyMovers
from ferry.downloads.policy import (
    DOWNLOAD_CANCELLED,
    DOWNLOAD_TIMEOUT,
    NETWORK_ERROR,
    FetchError,
)
from ferry.downloads.watchdog import Transfer
from tests.support import downloads as support_downloads
from tests.support.downloads import LOCAL, fetch, fetch_failure, listing, skip_without_o_direct
from tests.support.remote import pattern_bytes, wait_until

pytest_plugins = ("tests.support.download_fixtures",)

MIB = 1024 * 1024


# How each mode moves a body: in turn (as while other downloads keep the cores busy),
# by three threads through pooled buffers (a body alone), through its own (a big one),
# or by a mover process (a probe of a segmentable body, timed, reads in turn first).
MODES = {
    "in turn": {"in turn"},
    "alone": {"pipelined"},
    "large": {"pipelined"},
    "mover": {"mover", "in turn"},
}


class Moved(list):
    """The sizes of the rests moved past the page cache, the ways they were moved, and
    the tuning that moves them so."""

    def __init__(self, tuning: TransferTuning):
        super().__init__()
        self.modes: set[str] = set()
        self.tuning = tuning


@pytest.fixture(scope="module")
def movers():
    movers = BodyMovers(processes=1, channels=8)
    movers.enable()
    yield movers
    movers.stop()


def go_direct(target_dir, monkeypatch, mode: str, movers: BodyMovers | None = None) -> Moved:
    """Bodies of 1 MiB and more go past the page cache through 64 KiB buffers (so a
    body cycles through its buffers many times), moved as `mode` (one of MODES) says:
    "mover" needs `movers`, which every fetch of the test is then tuned with.
    Answers the sizes of the rests moved so, and the ways they were moved."""
    skip_without_o_direct(target_dir)
    monkeypatch.setattr(direct_io, "DIRECT_MIN_SIZE", MIB)
    monkeypatch.setattr(direct_io, "BUFFER_SIZE", 64 * 1024)
    monkeypatch.setattr(direct_io, "LARGE_BUFFER_SIZE", 64 * 1024)
    monkeypatch.setattr(direct_io, "CORES", 1 if mode in ("in turn", "mover") else 1 << 20)
    if mode == "large":
        monkeypatch.setattr(direct_io, "LARGE_BODY", MIB)
    tuning = TransferTuning()
    if mode == "mover":
        tuning = TransferTuning(movers=movers)
        _tune_every_fetch(monkeypatch, movers)
    calls = Moved(tuning)
    real = direct_io.direct_rest

    def counted(*args, **kwargs):
        calls.append(kwargs["total"] - kwargs["size"])
        return real(*args, **kwargs)

    monkeypatch.setattr(direct_io, "direct_rest", counted)
    for name, label in (("_in_turn", "in turn"), ("_pipelined", "pipelined")):
        monkeypatch.setattr(direct_io, name, _noting(getattr(direct_io, name), label, calls))
    real_mover = direct_io._moved_elsewhere

    def moved_elsewhere(*args, **kwargs):
        taken = real_mover(*args, **kwargs)
        if taken:
            calls.modes.add("mover")
        return taken

    monkeypatch.setattr(direct_io, "_moved_elsewhere", moved_elsewhere)
    return calls


def _tune_every_fetch(monkeypatch, movers: BodyMovers) -> None:
    """Every fetch of the test hands its bodies to `movers`."""

    def tuned(url, directory, policy=LOCAL, **kwargs):
        kwargs["tuning"] = dataclasses.replace(
            kwargs.get("tuning", TransferTuning()), movers=movers
        )
        return fetch_to_directory(url, directory, policy=policy, **kwargs)

    monkeypatch.setattr(support_downloads, "fetch", tuned)
    monkeypatch.setitem(globals(), "fetch", tuned)


def _noting(real, label: str, calls):
    def noted(*args, **kwargs):
        calls.modes.add(label)
        return real(*args, **kwargs)

    return noted


@pytest.fixture(params=list(MODES))
def direct(request, target_dir, monkeypatch):
    movers = request.getfixturevalue("movers") if request.param == "mover" else None
    calls = go_direct(target_dir, monkeypatch, request.param, movers)
    yield calls
    assert calls.modes <= MODES[request.param]


@pytest.fixture
def in_turn(target_dir, monkeypatch):
    return go_direct(target_dir, monkeypatch, "in turn")


@pytest.mark.parametrize("size", [3 * MIB, 3 * MIB + 4095, 5 * MIB + 1])
def test_a_big_body_arrives_whole_with_its_sha256(remote, target_dir, direct, size):
    seen: list[int] = []
    result = fetch(remote.generated(f"/big-{size}.bin", size), target_dir, on_progress=seen.append)
    content = pattern_bytes(size)
    assert result.path.read_bytes() == content
    assert result.sha256 == hashlib.sha256(content).hexdigest()
    assert direct and direct[0] > MIB
    assert seen[-1] == size and seen == sorted(seen)
    assert listing(target_dir) == [result.filename]


def test_a_fast_segmentable_file_read_alone_goes_past_the_cache_too(remote, target_dir, direct):
    size = 4 * MIB + 123
    tuning = TransferTuning(segmented_min_size=MIB, segment_probe_seconds=5)
    result = fetch(remote.ranged("/fast.bin", size), target_dir, tuning=tuning)
    assert result.path.read_bytes() == pattern_bytes(size)
    assert result.sha256 == hashlib.sha256(pattern_bytes(size)).hexdigest()
    assert [r.headers.get("Range") for r in remote.requests] == [None]
    assert direct


def test_a_body_cut_short_fails_and_leaves_nothing(remote, target_dir, direct):
    error = fetch_failure(remote.truncated("/cut", announced=4 * MIB, sent=2 * MIB + 5), target_dir)
    assert error.code == NETWORK_ERROR
    assert f"{2 * MIB + 5} of {4 * MIB}" in error.message
    assert listing(target_dir) == []
    assert direct


def cancelled_past_a_mebibyte(remote, target_dir, size: int) -> FetchError:
    """The failure of a slow download of `size` bytes cancelled once past 1 MiB."""
    cancel = threading.Event()

    def cancel_once_moving(moved: int) -> None:
        if moved > MIB:
            cancel.set()

    slow = remote.ranged("/slow.bin", size, pause=0.01)
    return fetch_failure(slow, target_dir, cancel=cancel, on_progress=cancel_once_moving)


def test_a_stall_times_out_and_a_cancel_stops_it(remote, target_dir, direct):
    policy = dataclasses.replace(LOCAL, timeout=1)
    stalled = remote.stall("/stall", sent_first=2 * MIB, length=8 * MIB)
    assert fetch_failure(stalled, target_dir, policy).code == DOWNLOAD_TIMEOUT
    assert cancelled_past_a_mebibyte(remote, target_dir, 8 * MIB).code == DOWNLOAD_CANCELLED
    assert listing(target_dir) == []
    assert len(direct) == 2


def test_a_pause_keeps_the_bytes_of_the_buffer_being_filled(
    remote, target_dir, direct, monkeypatch
):
    monkeypatch.setattr(direct_io, "BUFFER_SIZE", 4 * MIB)
    monkeypatch.setattr(direct_io, "LARGE_BUFFER_SIZE", 4 * MIB)
    cancel = threading.Event()
    seen: list[int] = []

    def pause_once_moving(size: int) -> None:
        seen.append(size)
        if size > 2 * MIB:
            cancel.set()

    slow = remote.ranged("/slow.bin", 8 * MIB, pause=0.005, validators=[("ETag", '"v1"')])
    with pytest.raises(FetchError) as paused:
        fetch(
            slow,
            target_dir,
            cancel=cancel,
            on_progress=pause_once_moving,
            keep_part=lambda error: True,
        )
    assert paused.value.code == DOWNLOAD_CANCELLED
    (part,) = [p for p in target_dir.iterdir() if p.name.endswith(".part")]
    kept = part.read_bytes()
    assert len(kept) >= seen[-1] > 2 * MIB  # nothing reported was lost
    assert kept == pattern_bytes(8 * MIB)[: len(kept)]


@pytest.fixture
def pool(monkeypatch):
    """A pool of its own, recording the buffers it lends."""
    pool = direct_io.BufferPool(keep_bytes=16 * 64 * 1024)
    lent: list[int] = []
    real_lend = pool.lend

    def recording(size: int):
        buffer = real_lend(size)
        lent.append(id(buffer))
        return buffer

    monkeypatch.setattr(pool, "lend", recording)
    monkeypatch.setattr(direct_io, "_POOL", pool)
    pool.lent = lent
    return pool


def transfer_threads() -> set[str]:
    prefixes = ("ferry-fetch-digest", "ferry-fetch-direct")
    return {t.name for t in threading.enumerate() if t.name.startswith(prefixes)}


def test_a_body_moved_in_turn_starts_no_thread_and_one_moved_at_once_does(
    remote, target_dir, direct, request
):
    size = 3 * MIB + 17
    seen: set[str] = set()
    result = fetch(
        remote.generated("/threads.bin", size),
        target_dir,
        on_progress=lambda _: seen.update(transfer_threads()),
    )
    assert result.sha256 == hashlib.sha256(pattern_bytes(size)).hexdigest()
    if direct.modes <= {"in turn", "mover"}:
        assert not seen
    else:
        assert seen == {"ferry-fetch-digest", "ferry-fetch-direct"}


def test_a_body_alone_is_moved_by_three_threads_and_one_among_others_in_turn(
    remote, target_dir, in_turn, monkeypatch
):
    monkeypatch.setattr(direct_io, "CORES", 2)
    fetch(remote.generated("/alone.bin", 2 * MIB + 1), target_dir)
    assert in_turn.modes == {"pipelined"}
    in_turn.modes.clear()
    cancel = threading.Event()
    stalled = remote.stall("/stalled", sent_first=1000, length=4 * MIB)
    other = threading.Thread(
        target=fetch_failure, args=(stalled, target_dir), kwargs={"cancel": cancel}
    )
    other.start()
    try:
        assert wait_until(lambda: direct_io.transfers_under_way() >= 1)
        among = fetch(remote.generated("/among.bin", 2 * MIB + 1), target_dir)
    finally:
        cancel.set()
        other.join()
    assert among.sha256 == hashlib.sha256(pattern_bytes(2 * MIB + 1)).hexdigest()
    assert in_turn.modes == {"in turn"}


def test_the_next_download_reuses_the_buffer_of_the_last(remote, target_dir, in_turn, pool):
    first = fetch(remote.generated("/one.bin", 2 * MIB + 3), target_dir)
    assert cancelled_past_a_mebibyte(remote, target_dir, 4 * MIB).code == DOWNLOAD_CANCELLED
    third = fetch(remote.generated("/three.bin", 3 * MIB + 5), target_dir)
    assert third.path.read_bytes() == pattern_bytes(3 * MIB + 5)
    assert first.sha256 == hashlib.sha256(pattern_bytes(2 * MIB + 3)).hexdigest()
    # One buffer each, the same one, given back by the cancelled download too.
    assert len(pool.lent) == 3 and pool.lent[0] == pool.lent[1] == pool.lent[2]
    assert pool.kept_bytes == 64 * 1024


def test_downloads_at_once_each_get_their_own_bytes_and_hash(remote, target_dir, in_turn, pool):
    sizes = [2 * MIB + i * 4099 for i in range(6)]
    results: dict[int, object] = {}

    def one(size: int) -> None:
        results[size] = fetch(remote.generated(f"/at-once-{size}.bin", size), target_dir)

    for _ in range(2):  # the second round runs on the first one's buffers
        threads = [threading.Thread(target=one, args=(size,)) for size in sizes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for size in sizes:
            content = pattern_bytes(size)
            assert results[size].path.read_bytes() == content
            assert results[size].sha256 == hashlib.sha256(content).hexdigest()
            results[size].path.unlink()
    assert len(pool.lent) == 2 * len(sizes)
    assert pool.kept_bytes == len(sizes) * 64 * 1024


def test_the_pool_keeps_no_more_than_its_bound():
    pool = direct_io.BufferPool(keep_bytes=3 * 4096)
    buffers = [pool.lend(4096) for _ in range(5)]
    assert len({id(buffer) for buffer in buffers}) == 5
    assert all(len(buffer) == 4096 for buffer in buffers)
    for buffer in buffers:
        pool.give_back(buffer)
    assert pool.kept_bytes == 3 * 4096
    again = [pool.lend(4096), pool.lend(4096)]
    assert {id(buffer) for buffer in again} <= {id(buffer) for buffer in buffers}
    assert pool.kept_bytes == 4096
    assert len(pool.lend(8192)) == 8192  # another size is mapped anew
    assert pool.kept_bytes == 4096


def test_without_o_direct_the_body_takes_the_usual_way(remote, target_dir, direct, monkeypatch):
    monkeypatch.setattr(direct_io, "open_direct", lambda fd: None)
    size = 3 * MIB + 9
    result = fetch(remote.generated("/plain.bin", size), target_dir)
    assert result.path.read_bytes() == pattern_bytes(size)
    assert result.sha256 == hashlib.sha256(pattern_bytes(size)).hexdigest()
    assert not direct


def test_direct_writes_refused_by_the_file_system_go_through_the_cache(
    remote, target_dir, direct, monkeypatch
):
    real_pwrite = os.pwrite
    direct_fds: set[int] = set()
    real_open = direct_io.open_direct

    def opened(fd: int) -> int | None:
        direct_fd = real_open(fd)
        direct_fds.add(direct_fd)
        return direct_fd

    def refusing(fd, data, offset):
        if fd in direct_fds:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(direct_io, "open_direct", opened)
    monkeypatch.setattr(direct_io.os, "pwrite", refusing)
    size = 3 * MIB + 5
    result = fetch(remote.generated("/refused.bin", size), target_dir)
    assert result.path.read_bytes() == pattern_bytes(size)
    assert direct and direct_fds


def test_a_rest_starting_off_a_block_boundary_is_written_and_hashed_in_place(target_dir, direct):
    # As after a resume or a probe: the file holds bytes up to an odd offset already.
    before, size = b"p" * 1000, 2 * MIB + 77
    body = pattern_bytes(size)
    sender, receiver = socket.socketpair()
    threading.Thread(target=lambda: (sender.sendall(body), sender.close()), daemon=True).start()
    path = target_dir / "rest.part"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    direct_fd = direct_io.open_direct(fd)
    assert direct_fd is not None
    try:
        os.pwrite(fd, before, 0)
        with Transfer(LOCAL, None, direct.tuning) as transfer, FileDigest(fd) as digest:
            digest.wrote(0, len(before), before)

            def failed(exc: BaseException, at: int) -> FetchError:
                return FetchError(NETWORK_ERROR, f"{exc} at {at}")

            moved = direct_io.direct_rest(
                receiver,
                fd,
                direct_fd,
                transfer,
                failed,
                None,
                digest,
                offset=len(before),
                size=0,
                total=size,
            )
            os.fsync(fd)
            digests = digest.finish(len(before) + size)
    finally:
        os.close(direct_fd)
        os.close(fd)
        receiver.close()
    assert moved == size
    assert path.read_bytes() == before + body
    assert digests["sha256"] == hashlib.sha256(before + body).hexdigest()
