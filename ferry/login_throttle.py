"""Failed logins slow a password guesser down without locking the real owner out.

Failures are counted three ways, each in a sliding window of `window` seconds:

- per account and client address (5 failures): the usual guesser, at one address,
  is refused for that account; the account stays open from every other address;
- per address (20 failures): one address trying many accounts is refused for all;
- per account (10 failures, from any addresses): a guesser spread over many
  addresses. While this block lasts, an address that has failed for the account
  within the window is refused; one with no recent failure for it still gets in.

So the right password from an address without recent failures always works. A key
that reaches its limit is refused for `first_block` seconds; each further block of
the same key lasts twice as long as the one before, up to `longest_block`. A success
clears the account-and-address count (never the address's, so one valid account
cannot launder a password-guessing address).

With TinyDB the state lives in memory: a restart forgets it. On PostgreSQL the
counts are rows every API instance changes together (a guesser spread over the
instances is counted once), and they outlive a restart. In memory, each count
remembers at most `max_keys` keys, the least recently failing ones forgotten first;
either way, keys with nothing recent are dropped as they are met.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ferry.kernel.errors import LoginBlocked

# Rocket.Chat's error codes and messages for a refused login.
BLOCKED_FOR_USER = ("error-login-blocked-for-user", "Login has been temporarily blocked for User")
BLOCKED_FOR_IP = ("error-login-blocked-for-ip", "Login has been temporarily blocked for IP")


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    blocks: int = 0
    blocked_until: float = 0.0
    last_failure: float = 0.0


class FailureCounter:
    """Failures per key within a sliding window, and the growing blocks they earn."""

    def __init__(
        self,
        *,
        max_failures: int,
        window: float,
        first_block: float,
        longest_block: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ):
        self.max_failures = max_failures
        self.window = window
        self.first_block = first_block
        self.longest_block = longest_block
        self.clock = clock
        self.max_keys = max_keys
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    def blocked_for(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may try now."""
        with self._lock:
            record = self._records.get(key)
            if record is None:
                return 0.0
            return max(0.0, record.blocked_until - self.clock())

    def failed_within(self, key: str, seconds: float) -> bool:
        """Whether `key` failed in the last `seconds`."""
        with self._lock:
            record = self._records.get(key)
            return record is not None and self.clock() - record.last_failure < seconds

    def failed(self, key: str) -> None:
        now = self.clock()
        with self._lock:
            record = self._records.pop(key, None) or _Record()
            self._records[key] = self.after_failure(record, now)  # most recent last
            self._forget_stale(now)

    def after_failure(self, record: _Record, now: float) -> _Record:
        """`record` with a failure at `now` counted, and the block it may earn."""
        record.failures = [t for t in record.failures if now - t < self.window]
        record.failures.append(now)
        record.last_failure = now
        if len(record.failures) >= self.max_failures:
            record.blocks += 1
            period = self.first_block * 2 ** (record.blocks - 1)
            record.blocked_until = now + min(period, self.longest_block)
            record.failures = []
        return record

    def reset(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)

    def _forget_stale(self, now: float) -> None:
        # A key is stale once its block is over and it has not failed for a long block's
        # time: its growth is forgiven. Oldest entries come first, so stop at a live one.
        while self._records:
            key, record = next(iter(self._records.items()))
            stale = record.blocked_until <= now and now - record.last_failure >= self.longest_block
            if not stale and len(self._records) <= self.max_keys:
                break
            del self._records[key]


class SharedFailureCounter(FailureCounter):
    """The same counts kept in records every API instance shares (on PostgreSQL), so a
    guesser spread over the instances behind a load balancer is counted once. Times are
    Unix seconds (the instances' clocks), not a process's monotonic clock."""

    def __init__(self, records, name: str, **settings):
        super().__init__(**{"clock": time.time, **settings})
        self._shared = records
        self._name = name

    def _record(self, key: str) -> _Record | None:
        found = self._shared.get(self._name, key)
        return None if not found else _Record(**found)

    def blocked_for(self, key: str) -> float:
        record = self._record(key)
        return 0.0 if record is None else max(0.0, record.blocked_until - self.clock())

    def failed_within(self, key: str, seconds: float) -> bool:
        record = self._record(key)
        return record is not None and self.clock() - record.last_failure < seconds

    def failed(self, key: str) -> None:
        now = self.clock()

        def count(found: dict | None) -> dict:
            return asdict(self.after_failure(_Record(**(found or {})), now))

        self._shared.change(self._name, key, count, now)
        # What has been quiet for a long block's time is forgiven, as in memory.
        self._shared.forget_unseen_since(self._name, now - self.longest_block)

    def reset(self, key: str) -> None:
        # One statement: a success is the common case of every login.
        self._shared.remove(self._name, key)


class LoginThrottle:
    """The three counts of failed logins, in memory or shared; see the module's docstring."""

    def __init__(
        self,
        *,
        pair_failures: int = 5,
        address_failures: int = 20,
        account_failures: int = 10,
        window: float = 300.0,
        first_block: float = 60.0,
        longest_block: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        shared=None,
    ):
        """`shared`: the storage's records every API instance changes together; without
        it (one process) the counts live in this process's memory."""
        common = {"window": window, "first_block": first_block, "longest_block": longest_block}
        self.window = window

        def counter(name: str, max_failures: int) -> FailureCounter:
            if shared is None:
                return FailureCounter(max_failures=max_failures, clock=clock, **common)
            return SharedFailureCounter(shared, name, max_failures=max_failures, **common)

        self.by_pair = counter("login-pair", pair_failures)
        self.by_address = counter("login-address", address_failures)
        self.by_account = counter("login-account", account_failures)

    @staticmethod
    def _pair(account: str, address: str) -> str:
        return f"{account}\n{address}"

    def check(self, account: str, address: str) -> None:
        """Raises LoginBlocked when `account` may not try from `address` now.

        `account` names the account tried (one key for its username and email alike);
        `address` is the client's address.
        """
        wait = self.by_address.blocked_for(address)
        if wait:
            raise LoginBlocked(*BLOCKED_FOR_IP, wait)
        pair = self._pair(account, address)
        wait = self.by_pair.blocked_for(pair)
        if not wait and self.by_pair.failed_within(pair, self.window):
            wait = self.by_account.blocked_for(account)
        if wait:
            raise LoginBlocked(*BLOCKED_FOR_USER, wait)

    def failed(self, account: str, address: str) -> None:
        self.by_pair.failed(self._pair(account, address))
        self.by_address.failed(address)
        self.by_account.failed(account)

    def succeeded(self, account: str, address: str) -> None:
        self.by_pair.reset(self._pair(account, address))
