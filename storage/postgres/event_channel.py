"""Messages every process on the database hears: PostgreSQL's LISTEN/NOTIFY.

A process sends with `send` (one `pg_notify` on a pooled connection) and hears, once
`start`ed, on one connection of its own kept for LISTEN, reopened after a failure.
A message is a JSON object under NOTIFY's 8000-byte limit; a larger one is not sent.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

import psycopg

from storage.postgres.connection import Database

log = logging.getLogger("ferry.storage.events")

CHANNEL = "ferry_events"
# NOTIFY refuses a payload of 8000 bytes or more.
MAX_MESSAGE_BYTES = 7900
# How often the listening thread looks up from its wait, to notice a stop.
POLL_SECONDS = 0.5
RECONNECT_SECONDS = 1.0


class EventChannel:
    def __init__(self, database: Database):
        self._database = database
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def send(self, message: dict) -> bool:
        """Tells `message` to every listening process (this one too); False when it is
        too large to be told."""
        payload = json.dumps(message, separators=(",", ":"), default=str)
        if len(payload.encode("utf-8")) > MAX_MESSAGE_BYTES:
            return False
        with self._database.connection() as connection:
            connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
        return True

    def start(self, on_message: Callable[[dict], None]) -> None:
        """Hears every message from now on, calling `on_message` from one thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._listen, args=(on_message,), name="ferry-event-channel", daemon=True
        )
        self._thread.start()

    def wait_listening(self, timeout: float) -> bool:
        return self._listening.wait(timeout)

    def _listen(self, on_message: Callable[[dict], None]) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._database.url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    while not self._stop.is_set():
                        for notice in connection.notifies(timeout=POLL_SECONDS):
                            _hand_over(notice.payload, on_message)
            except psycopg.Error:
                log.warning("lost the event channel; listening again shortly", exc_info=True)
            finally:
                self._listening.clear()
            self._stop.wait(RECONNECT_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _hand_over(payload: str, on_message: Callable[[dict], None]) -> None:
    try:
        message = json.loads(payload)
    except ValueError:
        log.warning("an event channel message is not JSON; skipped")
        return
    try:
        on_message(message)
    except Exception:
        log.exception("handling an event channel message failed")
