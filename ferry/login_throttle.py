"""Temporary login blocks after repeated failures, per user and per client address.

A key (a user, or a client IP) that fails `max_failures` times within `window`
seconds is refused for `first_block` seconds; each further block of the same key
lasts twice as long as the one before, up to `longest_block`. A success clears the
user's record (never the address's, so one valid account cannot launder a
password-guessing address).

The state lives in memory only: a restart forgets it, and each server process
counts on its own. It is bounded: at most `max_keys` keys are remembered, the
least recently failing ones are forgotten first, and keys with nothing recent
are dropped as they are met.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


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
    """Rocket.Chat's "block failed login attempts" by user and by IP, kept in memory."""

    def __init__(
        self,
        *,
        user_failures: int = 5,
        ip_failures: int = 20,
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
        self.by_user = FailureCounter(max_failures=user_failures, **common)
        self.by_ip = FailureCounter(max_failures=ip_failures, **common)
