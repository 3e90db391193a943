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

The state lives in memory only: a restart forgets it, and each server process
counts on its own. It is bounded: each count remembers at most `max_keys` keys, the
least recently failing ones are forgotten first, and keys with nothing recent are
dropped as they are met.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

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
            record.failures = [t for t in record.failures if now - t < self.window]
            record.failures.append(now)
            record.last_failure = now
            if len(record.failures) >= self.max_failures:
                record.blocks += 1
                period = self.first_block * 2 ** (record.blocks - 1)
                record.blocked_until = now + min(period, self.longest_block)
                record.failures = []
            self._records[key] = record  # most recent last
            self._forget_stale(now)

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


class LoginThrottle:
    """The three counts of failed logins, kept in memory; see the module's docstring."""

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
    ):
        common = {
            "window": window,
            "first_block": first_block,
            "longest_block": longest_block,
            "clock": clock,
        }
        self.window = window
        self.by_pair = FailureCounter(max_failures=pair_failures, **common)
        self.by_address = FailureCounter(max_failures=address_failures, **common)
        self.by_account = FailureCounter(max_failures=account_failures, **common)

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
