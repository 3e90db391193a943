"""Bodies handed to mover processes: whole and hashed, started only when needed, and a
mover that dies costs the one body it was moving, not the server's downloads."""

from __future__ import annotations

import hashlib
import os
import signal
import threading

import pytest

from ferry.downloads import direct_io
from ferry.downloads import movers as movers_module
from ferry.downloads.checksums import Checksum
from ferry.downloads.fetch_types import TransferTuning
from ferry.downloads.movers import BodyMovers, processes_for
from ferry.downloads.policy import CHECKSUM_MISMATCH, NETWORK_ERROR, FetchError
from tests.support.downloads import fetch, fetch_failure, listing, skip_without_o_direct
from tests.support.remote import pattern_bytes

pytest_plugins = ("tests.support.download_fixtures",)

MIB = 1024 * 1024


@pytest.fixture
def in_turn(target_dir, monkeypatch):
    """Bodies of 1 MiB and more go past the page cache in turn, as among other
    downloads on a busy machine: the way a mover can take."""
    skip_without_o_direct(target_dir)
    monkeypatch.setattr(direct_io, "DIRECT_MIN_SIZE", MIB)
    monkeypatch.setattr(direct_io, "CORES", 1)


@pytest.fixture
def movers(in_turn):
    movers = BodyMovers(processes=1, channels=2)
    movers.enable()
    yield movers
    movers.stop()


def tuned(movers: BodyMovers) -> TransferTuning:
    return TransferTuning(movers=movers)


def test_a_body_moved_by_another_process_arrives_whole_with_every_digest(
    remote, target_dir, movers
):
    size = 5 * MIB + 4097
    content = pattern_bytes(size)
    md5 = Checksum("md5", hashlib.md5(content).hexdigest())
    seen: list[int] = []
    result = fetch(
        remote.generated("/moved.bin", size),
        target_dir,
        tuning=tuned(movers),
        checksum=md5,
        on_progress=seen.append,
    )
    assert result.path.read_bytes() == content
    assert result.sha256 == hashlib.sha256(content).hexdigest()
    assert seen[-1] == size and seen == sorted(seen)
    (mover,) = movers.pids()
    assert mover != os.getpid()
    # The digest the mover answers is checked like one computed here.
    wrong = Checksum("md5", "0" * 32)
    error = fetch_failure(
        remote.generated("/moved-again.bin", size), target_dir, tuning=tuned(movers), checksum=wrong
    )
    assert error.code == CHECKSUM_MISMATCH
    assert listing(target_dir) == [result.filename]


def test_movers_start_at_the_first_body_after_the_server_enables_them(remote, target_dir, in_turn):
    movers = BodyMovers(processes=2, channels=2)
    try:
        assert movers.try_move({}, [], lambda at: None) is None  # not enabled: in-process
        assert movers.pids() == []
        movers.enable()
        assert movers.pids() == []
        fetch(remote.generated("/first.bin", 2 * MIB), target_dir, tuning=tuned(movers))
        assert len(movers.pids()) == 2
    finally:
        movers.stop()
    assert movers.pids() == []


def test_movers_outlive_stop_signals_and_end_when_the_server_stops_them(remote, target_dir, movers):
    fetch(remote.generated("/one.bin", 2 * MIB), target_dir, tuning=tuned(movers))
    (pid,) = movers.pids()
    # A Ctrl-C or a stop sent to the whole process group reaches the movers too: they
    # wait for the server to end them.
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGTERM)
    again = fetch(remote.generated("/again.bin", 2 * MIB), target_dir, tuning=tuned(movers))
    assert again.path.read_bytes() == pattern_bytes(2 * MIB)
    assert os.waitpid(pid, os.WNOHANG) == (0, 0)  # still running
    movers.stop()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: it ended
    # Stopped movers take no more bodies: they move in-process.
    result = fetch(remote.generated("/two.bin", 2 * MIB), target_dir, tuning=tuned(movers))
    assert result.path.read_bytes() == pattern_bytes(2 * MIB)


def test_a_mover_that_dies_fails_its_body_as_worth_retrying_and_no_other(
    remote, target_dir, movers
):
    fetch(remote.generated("/warm.bin", 2 * MIB), target_dir, tuning=tuned(movers))
    (pid,) = movers.pids()

    def kill_once_moving(moved: int) -> None:
        if moved > MIB:
            os.kill(pid, signal.SIGKILL)

    slow = remote.ranged("/slow.bin", 8 * MIB, pause=0.01)
    error = fetch_failure(slow, target_dir, tuning=tuned(movers), on_progress=kill_once_moving)
    assert error.code == NETWORK_ERROR and error.transient
    assert "mover" in error.message
    # The next bodies find its channels closed and move in-process, whole.
    for name in ("after-1.bin", "after-2.bin", "after-3.bin"):
        result = fetch(remote.generated(f"/{name}", 3 * MIB + 1), target_dir, tuning=tuned(movers))
        assert result.sha256 == hashlib.sha256(pattern_bytes(3 * MIB + 1)).hexdigest()


def test_a_mover_that_died_is_replaced_when_a_body_next_needs_one(
    remote, target_dir, movers, monkeypatch
):
    monkeypatch.setattr(movers_module, "RESTART_SECONDS", 0)
    fetch(remote.generated("/warm.bin", 2 * MIB), target_dir, tuning=tuned(movers))
    (first,) = movers.pids()
    os.kill(first, signal.SIGKILL)
    os.waitpid(first, 0)
    size = 3 * MIB + 1
    result = fetch(remote.generated("/after.bin", size), target_dir, tuning=tuned(movers))
    assert result.sha256 == hashlib.sha256(pattern_bytes(size)).hexdigest()
    (second,) = movers.pids()
    assert second != first
    assert os.waitpid(second, os.WNOHANG) == (0, 0)  # running


def test_bodies_beyond_the_free_movers_move_in_process(remote, target_dir, movers, monkeypatch):
    """Two channels, four slow bodies at once: two go to movers, the others move here,
    and each arrives whole whoever moves it."""
    ways: list[str] = []
    real_in_turn, real_mover = direct_io._in_turn, direct_io._moved_elsewhere

    def in_turn(*args, **kwargs):
        ways.append("here")
        return real_in_turn(*args, **kwargs)

    def moved_elsewhere(*args, **kwargs):
        taken = real_mover(*args, **kwargs)
        if taken:
            ways.append("mover")
        return taken

    monkeypatch.setattr(direct_io, "_in_turn", in_turn)
    monkeypatch.setattr(direct_io, "_moved_elsewhere", moved_elsewhere)
    sizes = [2 * MIB + 4099 * i for i in range(4)]
    results: dict[int, object] = {}
    errors: list[BaseException] = []
    started = threading.Barrier(len(sizes))

    def one(size: int) -> None:
        try:
            url = remote.ranged(f"/many-{size}.bin", size, pause=0.005)
            started.wait()
            results[size] = fetch(url, target_dir, tuning=tuned(movers))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(size,)) for size in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for size in sizes:
        assert results[size].path.read_bytes() == pattern_bytes(size)
        assert results[size].sha256 == hashlib.sha256(pattern_bytes(size)).hexdigest()
    assert sorted(ways) == ["here", "here", "mover", "mover"]


def test_a_fetch_cut_short_in_a_mover_is_told_as_in_process(remote, target_dir, movers):
    error = fetch_failure(
        remote.truncated("/cut", announced=4 * MIB, sent=2 * MIB + 5),
        target_dir,
        tuning=tuned(movers),
    )
    assert isinstance(error, FetchError) and error.code == NETWORK_ERROR
    assert f"{2 * MIB + 5} of {4 * MIB}" in error.message
    assert listing(target_dir) == []


@pytest.mark.parametrize(("cores", "processes"), [(1, 1), (2, 1), (4, 1), (5, 2), (16, 4)])
def test_one_mover_serves_up_to_four_cores(cores, processes):
    assert processes_for(cores) == processes
