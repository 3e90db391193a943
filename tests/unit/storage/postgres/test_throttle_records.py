"""The login throttle's counts shared by every API instance on one PostgreSQL database."""

from __future__ import annotations

import threading

import pytest

from ferry.kernel.errors import LoginBlocked
from ferry.login_throttle import LoginThrottle
from storage.postgres import connection
from storage.postgres.throttle_records import ThrottleRecords
from tests.support.postgres import SKIP_REASON, databases

pytestmark = pytest.mark.skipif(not databases.available, reason=SKIP_REASON)


@pytest.fixture
def instances():
    url = databases.new()
    opened = [connection.connect(url), connection.connect(url)]
    yield [ThrottleRecords(database) for database in opened]
    for database in opened:
        database.close()


def throttle(records: ThrottleRecords) -> LoginThrottle:
    return LoginThrottle(pair_failures=4, address_failures=50, account_failures=50, shared=records)


def test_failures_through_two_instances_are_counted_together(instances):
    first, second = throttle(instances[0]), throttle(instances[1])
    for instance in (first, second, first, second):
        instance.check("alice", "203.0.113.9")
        instance.failed("alice", "203.0.113.9")
    for instance in (first, second):
        with pytest.raises(LoginBlocked):
            instance.check("alice", "203.0.113.9")
        instance.check("alice", "198.51.100.1")  # another address still may try


def test_a_success_on_one_instance_clears_the_count_on_the_other(instances):
    first, second = throttle(instances[0]), throttle(instances[1])
    for _ in range(3):
        first.failed("bob", "203.0.113.9")
    second.succeeded("bob", "203.0.113.9")
    for _ in range(3):
        first.failed("bob", "203.0.113.9")
    second.check("bob", "203.0.113.9")


def test_concurrent_failures_are_never_lost(instances):
    records = instances[0]
    shared = throttle(records)

    def fail() -> None:
        for _ in range(5):
            shared.by_address.failed("192.0.2.7")

    threads = [threading.Thread(target=fail) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(records.get("login-address", "192.0.2.7")["failures"]) == 20


def test_records_quiet_for_a_long_block_are_forgotten(instances):
    records = instances[0]
    records.change("login-pair", "old", lambda found: {"failures": [1.0]}, seen=1.0)
    records.forget_unseen_since("login-pair", 2.0)
    assert records.get("login-pair", "old") is None
