"""The server gives freed memory back to the system while it runs, and only then."""

import threading

import pytest

from ferry.ops import allocator

pytestmark = pytest.mark.skipif(allocator.glibc() is None, reason="needs glibc")


def _counting():
    calls = []
    released = threading.Event()

    def release() -> bool:
        calls.append(1)
        if len(calls) >= 3:
            released.set()
        return True

    return calls, released, release


def test_free_memory_is_given_back_repeatedly_once_started_and_never_after_stop():
    calls, released, release = _counting()
    periodic = allocator.PeriodicRelease(interval=0.01, release=release)
    assert not calls  # building it starts nothing
    periodic.start()
    assert released.wait(5)
    periodic.stop()
    after_stop = len(calls)
    threading.Event().wait(0.05)
    assert len(calls) == after_stop


def test_nothing_is_released_before_start():
    calls, _, release = _counting()
    allocator.PeriodicRelease(interval=0.01, release=release)
    threading.Event().wait(0.05)
    assert calls == []


def test_release_free_memory_answers_on_glibc():
    assert isinstance(allocator.release_free_memory(), bool)
