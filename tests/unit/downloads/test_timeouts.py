"""A download's `timeout` bounds time without progress; `max_duration` bounds it all."""

from __future__ import annotations

import dataclasses

import pytest

from ferry.downloads.fetch import fetch_to_directory
from ferry.downloads.policy import DOWNLOAD_TIMEOUT, FetchError
from tests.support.downloads import LOCAL, listing

pytest_plugins = ("tests.support.download_fixtures",)


def test_a_slow_download_that_keeps_moving_is_not_cut_off(remote, target_dir):
    # Ten pieces a third of a second apart: three seconds in all, under a one-second timeout.
    url = remote.trickle("/slow.bin", pieces=10, piece=b"s" * 1024, pause=0.3)
    policy = dataclasses.replace(LOCAL, timeout=1)
    result = fetch_to_directory(url, target_dir, policy=policy)
    assert (target_dir / result.filename).read_bytes() == b"s" * 10 * 1024


def test_a_stalled_download_times_out_saying_it_got_nothing(remote, target_dir):
    policy = dataclasses.replace(LOCAL, timeout=1)
    with pytest.raises(FetchError) as failure:
        fetch_to_directory(remote.stall("/stall"), target_dir, policy=policy)
    assert failure.value.code == DOWNLOAD_TIMEOUT
    assert "no data arrived for 1 s" in failure.value.message
    assert listing(target_dir) == []


def test_the_maximum_duration_bounds_a_download_that_keeps_moving(remote, target_dir):
    url = remote.trickle("/slow.bin", pieces=100, piece=b"s" * 1024, pause=0.1)
    policy = dataclasses.replace(LOCAL, timeout=5, max_duration=0.5)
    with pytest.raises(FetchError) as failure:
        fetch_to_directory(url, target_dir, policy=policy)
    assert failure.value.code == DOWNLOAD_TIMEOUT
    assert "maximum of 0.5 s" in failure.value.message
    assert listing(target_dir) == []


def test_the_maximum_duration_must_be_positive():
    with pytest.raises(ValueError):
        dataclasses.replace(LOCAL, max_duration=0)
