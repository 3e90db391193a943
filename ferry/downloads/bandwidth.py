"""Sharing the server's bandwidth: one token bucket all downloads draw from
(`--max-download-rate`), and a limit on the transfers from one host at once
(`--max-connections-per-host`)."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable


class TokenBucket:
    """`rate` bytes a second, across every caller, with bursts of up to `burst` bytes.

    Callers pay after receiving: `take` spends the bytes (the balance may go below
    zero) and says how long the caller must wait for the balance to be back at zero.
    So the bucket never holds up a read, only the next one, and a chunk bigger than the
    burst is still allowed, at the rate.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else rate)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self, amount: int) -> float:
        """Spend `amount` bytes; the seconds to wait before receiving more."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= amount
            return -self._tokens / self.rate if self._tokens < 0 else 0.0


class HostSlots:
    """At most `limit` transfers per host at once; the others wait, first come first
    served, and get the slot a finished one hands on. Not thread-safe: the download
    manager calls it under its lock."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        self._running: Counter[str] = Counter()
        self._waiting: dict[str, deque[Hashable]] = {}

    def admit(self, host: str, item: Hashable) -> bool:
        """Whether `item` may run now; if not, it waits for a slot of `host`."""
        if self._running[host] < self._limit:
            self._running[host] += 1
            return True
        self._waiting.setdefault(host, deque()).append(item)
        return False

    def release(self, host: str, *, hand_on: bool = True):
        """A transfer from `host` ended: the item that takes over its slot, or None
        (always None without `hand_on`, which leaves the waiting where they are)."""
        waiting = self._waiting.get(host)
        if waiting and hand_on:
            item = waiting.popleft()
            if not waiting:
                del self._waiting[host]
            return item
        self._running[host] -= 1
        if self._running[host] <= 0:
            del self._running[host]
        return None

    def withdraw(self, host: str, item: Hashable) -> bool:
        """Take a waiting `item` out of the line; False if it was not waiting."""
        waiting = self._waiting.get(host)
        if not waiting or item not in waiting:
            return False
        waiting.remove(item)
        if not waiting:
            del self._waiting[host]
        return True

    def waiting(self) -> int:
        return sum(len(line) for line in self._waiting.values())
