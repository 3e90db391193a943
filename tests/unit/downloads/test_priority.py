"""A download's threads yield the processor to requests: the server stays quick to
answer while downloads keep every core busy."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from ferry.downloads.manager import DownloadManager
from ferry.downloads.priority import TRANSFER_NICENESS, yield_to_requests
from storage.downloads import DownloadRepository
from tests.support.downloads import LOCAL
from tests.support.remote import wait_until

pytest_plugins = ("tests.support.download_fixtures",)
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="threads have priorities of their own on Linux"
)


def niceness(native_id: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, native_id)


def test_only_the_calling_thread_yields():
    own = niceness(threading.get_native_id())
    seen = {}

    def transfer() -> None:
        yield_to_requests()
        seen["niceness"] = niceness(threading.get_native_id())

    thread = threading.Thread(target=transfer)
    thread.start()
    thread.join()
    assert seen["niceness"] == max(TRANSFER_NICENESS, own)
    assert niceness(threading.get_native_id()) == own


def test_a_running_download_moves_and_hashes_its_bytes_at_the_lower_priority(
    store, remote, target_dir
):
    own = niceness(threading.get_native_id())
    manager = DownloadManager(DownloadRepository(store), LOCAL)
    manager.startup()
    try:
        handle = manager.start(remote.endless("/stream"), target_dir, "files")
        assert wait_until(lambda: manager.get(handle.id)["current_size"] > 0)
        working = {
            thread.name: niceness(thread.native_id)
            for thread in threading.enumerate()
            if thread.name.startswith(("ferry-download_", "ferry-fetch-digest"))
        }
        assert any(name.startswith("ferry-download_") for name in working), working
        assert "ferry-fetch-digest" in working, working
        assert set(working.values()) == {max(TRANSFER_NICENESS, own)}
        assert niceness(threading.get_native_id()) == own
        manager.cancel(handle.id)
    finally:
        manager.shutdown(timeout=10)
