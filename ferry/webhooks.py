"""Webhooks: every finished download's and import operation's event, POSTed as JSON to
each configured URL, signed, from one background thread.

A delivery that fails (a network error, a non-2xx answer) is tried again after a delay
that doubles each time, with jitter, up to MAX_ATTEMPTS. Publishing only queues (a
bounded queue: when it is full the delivery is dropped and counted as failed), so a slow
or dead receiver never holds up a download. Each URL, and every redirect it answers
with, passes the download policy's address and domain checks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import hmac
import http.client
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from urllib.parse import urljoin

import orjson
import urllib3

from ferry.downloads.fetch_types import TransferTuning
from ferry.downloads.policy import (
    DOMAIN_BLOCKED,
    INVALID_URL,
    NETWORK_ERROR,
    CheckedUrl,
    FetchError,
    FetchPolicy,
)
from ferry.downloads.records import without_secrets
from ferry.downloads.request import REDIRECT_STATUSES, USER_AGENT
from ferry.downloads.urllib3_vetted import vetted_connections
from ferry.downloads.watchdog import Transfer
from ferry.events import DOWNLOAD, Event

log = logging.getLogger("ferry.webhooks")

SIGNATURE_HEADER = "X-Ferry-Signature"
EVENT_HEADER = "X-Ferry-Event"
QUEUE_SIZE = 1000
MAX_ATTEMPTS = 5
FIRST_RETRY_SECONDS = 1.0
# One delivery's whole exchange, connecting included, may take this long.
POST_TIMEOUT_SECONDS = 10.0

DELIVERED = "delivered"
FAILED = "failed"


def signature(secret: str, body: bytes) -> str:
    """The X-Ferry-Signature value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(event: Event) -> bytes:
    """An event as a webhook receives it; download URLs with their secrets redacted."""
    if event.subject == DOWNLOAD:
        return orjson.dumps(
            {"id": event.id, "type": event.type, "download": without_secrets(event.record)}
        )
    return orjson.dumps({"id": event.id, "type": event.type, "operation": event.record})


def post(target: CheckedUrl, body: bytes, headers: dict, policy: FetchPolicy) -> int:
    """POST `body` to `target`, following redirects (each one checked again, the body
    sent again); the final status.

    Raises FetchError: the address or domain is refused, or the exchange failed.
    """
    with Transfer(policy, None, TransferTuning()) as transfer:
        connections = vetted_connections(transfer)
        try:
            for _ in range(policy.max_redirects + 1):
                try:
                    response = connections.urlopen(
                        "POST",
                        target.url,
                        body=body,
                        headers={"User-Agent": USER_AGENT, **headers},
                        redirect=False,
                        retries=False,
                        # The answer's body is never read: a receiver cannot make it big.
                        preload_content=False,
                        timeout=urllib3.Timeout(
                            connect=policy.connect_timeout, read=policy.idle_timeout
                        ),
                    )
                except FetchError:
                    raise
                except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
                    raise transfer.explain(exc, target.host) from None
                response.close()
                location = response.headers.get("Location")
                if response.status not in REDIRECT_STATUSES or not location:
                    return response.status
                target = policy.check_url(urljoin(target.url, location))
            raise FetchError(NETWORK_ERROR, f"more than {policy.max_redirects} redirects")
        finally:
            connections.clear()


@dataclasses.dataclass
class Delivery:
    target: CheckedUrl
    body: bytes
    event_type: str
    attempts: int = 0


class Webhooks:
    def __init__(
        self,
        urls: tuple[str, ...],
        secret: str | None,
        policy: FetchPolicy,
        *,
        on_outcome: Callable[[str], None] | None = None,
        queue_size: int = QUEUE_SIZE,
        max_attempts: int = MAX_ATTEMPTS,
        first_retry: float = FIRST_RETRY_SECONDS,
        send: Callable[[CheckedUrl, bytes, dict, FetchPolicy], int] = post,
        clock: Callable[[], float] = time.monotonic,
    ):
        """Checks every URL against `policy` now (no DNS: a name's addresses are checked
        when a delivery connects). `on_outcome` hears DELIVERED or FAILED per delivery.

        Raises:
            FetchError: a URL the policy refuses (not http(s), a blocked domain, a
                private address without --allow-private-networks).
        """
        self._policy = dataclasses.replace(
            policy,
            timeout=POST_TIMEOUT_SECONDS,
            idle_timeout=min(policy.idle_timeout, POST_TIMEOUT_SECONDS),
            connect_timeout=min(policy.connect_timeout, POST_TIMEOUT_SECONDS),
        )
        self._targets = [self._policy.check_url(url) for url in urls]
        self._secret = secret
        self._on_outcome = on_outcome
        self._queue_size = queue_size
        self._max_attempts = max_attempts
        self._first_retry = first_retry
        self._send = send
        self._clock = clock
        self._pending: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self._targets or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="ferry-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the worker; what is still queued is not sent."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def event(self, event: Event) -> None:
        """Queue `event` for every URL if it is a finish; never blocks on a receiver."""
        if not self._targets or not event.finished:
            return
        body = payload(event)
        with self._changed:
            for target in self._targets:
                if len(self._pending) >= self._queue_size:
                    self._told(FAILED, target, event.type, "the webhook queue is full")
                    continue
                delivery = Delivery(target, body, event.type)
                heapq.heappush(self._pending, (self._clock(), next(self._order), delivery))
            self._changed.notify_all()

    def _next(self) -> Delivery | None:
        with self._changed:
            while not self._stopping:
                now = self._clock()
                if self._pending and self._pending[0][0] <= now:
                    return heapq.heappop(self._pending)[2]
                wait = self._pending[0][0] - now if self._pending else None
                self._changed.wait(wait)
            return None

    def _run(self) -> None:
        while (delivery := self._next()) is not None:
            try:
                self.attempt(delivery)
            except Exception:  # one bad delivery must not end the worker
                log.exception("webhook delivery to %s crashed", delivery.target.host)

    def attempt(self, delivery: Delivery) -> None:
        """Send `delivery` once; on a failure that may pass, queue it again for later."""
        headers = {"Content-Type": "application/json", EVENT_HEADER: delivery.event_type}
        if self._secret:
            headers[SIGNATURE_HEADER] = signature(self._secret, delivery.body)
        delivery.attempts += 1
        final = False
        try:
            status = self._send(delivery.target, delivery.body, headers, self._policy)
        except FetchError as exc:
            reason, final = exc.message, exc.code in (DOMAIN_BLOCKED, INVALID_URL)
        else:
            if 200 <= status < 300:
                self._told(DELIVERED, delivery.target, delivery.event_type, None)
                return
            reason = f"answered HTTP {status}"
        if final or delivery.attempts >= self._max_attempts:
            self._told(FAILED, delivery.target, delivery.event_type, reason)
            return
        delay = self._first_retry * 2 ** (delivery.attempts - 1) * (1 + random.random() / 4)
        log.info(
            "webhook to %s failed (%s); trying again in %.1f s",
            delivery.target.host,
            reason,
            delay,
        )
        with self._changed:
            due = self._clock() + delay
            heapq.heappush(self._pending, (due, next(self._order), delivery))
            self._changed.notify_all()

    def _told(self, outcome: str, target: CheckedUrl, event_type: str, reason: str | None):
        if outcome == FAILED:
            log.warning("webhook %s to %s failed: %s", event_type, target.host, reason)
        if self._on_outcome is not None:
            try:
                self._on_outcome(outcome)
            except Exception:
                log.exception("webhook outcome listener failed")
