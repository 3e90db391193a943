"""Messages between processes on one PostgreSQL database (LISTEN/NOTIFY)."""

from __future__ import annotations

import queue

import pytest

from storage.postgres import connection
from storage.postgres.event_channel import MAX_MESSAGE_BYTES, EventChannel
from tests.support.postgres import SKIP_REASON, databases

pytestmark = pytest.mark.skipif(not databases.available, reason=SKIP_REASON)


@pytest.fixture
def two_processes():
    url = databases.new()
    opened = [connection.connect(url), connection.connect(url)]
    channels = [EventChannel(database) for database in opened]
    yield channels
    for channel in channels:
        channel.stop()
    for database in opened:
        database.close()


def test_a_message_sent_by_one_process_is_heard_by_the_others(two_processes):
    sender, listener = two_processes
    heard: queue.Queue = queue.Queue()
    listener.start(heard.put)
    assert listener.wait_listening(10)
    assert sender.send({"type": "download.completed", "record": {"id": "d1", "name": "é"}})
    assert heard.get(timeout=10) == {
        "type": "download.completed",
        "record": {"id": "d1", "name": "é"},
    }


def test_a_message_over_the_limit_is_not_sent(two_processes):
    sender, listener = two_processes
    heard: queue.Queue = queue.Queue()
    listener.start(heard.put)
    assert listener.wait_listening(10)
    assert sender.send({"record": "x" * MAX_MESSAGE_BYTES}) is False
    assert sender.send({"after": True})
    assert heard.get(timeout=10) == {"after": True}


def test_stop_ends_the_listening_thread(two_processes):
    _, listener = two_processes
    listener.start(lambda message: None)
    assert listener.wait_listening(10)
    listener.stop()
    assert not listener.wait_listening(0)
