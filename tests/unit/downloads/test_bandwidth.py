"""The shared rate limit's arithmetic (an injected clock, no sleeping) and the per-host
slots, alone and in the download manager."""

from __future__ import annotations

import pytest

from ferry.downloads.bandwidth import HostSlots, TokenBucket
from ferry.downloads.fetch_types import TransferTuning
from tests.support.remote import wait_until
from tests.unit.downloads.test_manager import status_of

# The manager fixtures: `managers(**options)` over a fresh store.
pytest_plugins = ("tests.unit.downloads.test_manager",)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_a_burst_through_then_holds_readers_to_the_rate():
    clock = Clock()
    bucket = TokenBucket(100, clock=clock)
    assert bucket.take(100) == 0  # the first second's worth, at once
    assert bucket.take(50) == pytest.approx(0.5)
    assert bucket.take(50) == pytest.approx(1.0)  # debts add up
    clock.now += 1.0
    assert bucket.take(0) == 0
    assert bucket.take(100) == pytest.approx(1.0)


def test_time_refills_the_bucket_but_never_past_the_burst():
    clock = Clock()
    bucket = TokenBucket(1000, burst=200, clock=clock)
    bucket.take(200)
    clock.now += 60  # a long pause saves up no more than the burst
    assert bucket.take(200) == 0
    assert bucket.take(100) == pytest.approx(0.1)


def test_many_readers_share_one_rate():
    clock = Clock()
    bucket = TokenBucket(1_000_000, clock=clock)
    bucket.take(1_000_000)
    waits = [bucket.take(250_000) for _ in range(4)]  # four downloads, one chunk each
    assert waits == pytest.approx([0.25, 0.5, 0.75, 1.0])


def test_a_rate_must_be_positive():
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_host_slots_let_the_limit_run_and_hand_slots_on_in_order():
    slots = HostSlots(2)
    assert slots.admit("a", "a1") and slots.admit("a", "a2")
    assert not slots.admit("a", "a3") and not slots.admit("a", "a4")
    assert slots.admit("b", "b1")  # another host is not held up
    assert slots.waiting() == 2
    assert slots.release("a") == "a3"
    assert slots.withdraw("a", "a4") and not slots.withdraw("a", "a4")
    assert slots.release("a") is None and slots.release("a") is None
    assert slots.admit("a", "a5") and slots.admit("a", "a6")


def test_without_hand_on_the_waiting_stay_waiting():
    slots = HostSlots(1)
    slots.admit("a", "a1")
    slots.admit("a", "a2")
    assert slots.release("a", hand_on=False) is None
    assert slots.waiting() == 1


def test_the_manager_runs_at_most_the_limit_per_host(managers, remote, target_dir):
    manager = managers(max_concurrent=3, max_per_host=1)
    first = manager.start(remote.stall("/a1"), target_dir, "files")
    second = manager.start(remote.stall("/a2"), target_dir, "files")
    elsewhere = manager.start(
        remote.stall("/b1").replace("127.0.0.1", "localhost"), target_dir, "files"
    )
    assert status_of(manager, first.id, "downloading")
    assert status_of(manager, elsewhere.id, "downloading")
    assert manager.get(second.id)["status"] == "starting"
    assert sorted(r.path for r in remote.requests) == ["/a1", "/b1"]

    assert manager.cancel(first.id)
    assert status_of(manager, second.id, "downloading")


def test_a_download_waiting_for_its_host_can_be_cancelled_and_stopped(managers, remote, target_dir):
    manager = managers(max_concurrent=2, max_per_host=1)
    running = manager.start(remote.stall("/a1"), target_dir, "files")
    cancelled = manager.start(remote.url("/never.bin"), target_dir, "files")
    stopped = manager.start(remote.url("/later.bin"), target_dir, "files")
    assert status_of(manager, running.id, "downloading")
    assert manager.cancel(cancelled.id)
    assert cancelled.wait(0)["status"] == "cancelled"
    manager.shutdown(timeout=10)
    assert (manager.get(stopped.id)["status"], manager.get(stopped.id)["error"]) == (
        "failed",
        "SERVER_STOPPED",
    )
    assert wait_until(lambda: running.done)
    assert [r.path for r in remote.requests] == ["/a1"]


class CountingBucket(TokenBucket):
    """A bucket too big to hold anyone up, that keeps what it was told."""

    def __init__(self):
        super().__init__(10**15)
        self.taken: list[int] = []

    def take(self, amount: int) -> float:
        self.taken.append(amount)
        return super().take(amount)


@pytest.mark.parametrize("size", [3000, 5 * 1024 * 1024])
def test_every_received_byte_is_drawn_from_the_shared_bucket(managers, remote, target_dir, size):
    bucket = CountingBucket()
    manager = managers(tuning=TransferTuning(bandwidth=bucket))
    handle = manager.start(remote.generated("/f.bin", size), target_dir, "files")
    assert handle.wait(30)["status"] == "completed"
    assert sum(bucket.taken) == size
