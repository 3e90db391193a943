"""Live events: each change of a download or an import operation, numbered and told to
whoever listens (the event stream's subscribers, the webhooks).

Publishers are worker threads; they never wait for a listener. Every subscriber has a
bounded queue: one that falls that far behind is closed (its client reconnects with the
last id it got and is replayed what the bounded buffer still holds), so a slow client
cannot make the server hold an unbounded backlog.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ferry.kernel.statuses import DownloadStatus, EventType, ImportStep

log = logging.getLogger(__name__)

DOWNLOAD = "download"
OPERATION = "operation"

# A download status, once recorded, is told as this event.
DOWNLOAD_STATUS_EVENTS = {
    DownloadStatus.STARTING: EventType.DOWNLOAD_STARTED,
    DownloadStatus.DOWNLOADING: EventType.DOWNLOAD_PROGRESS,
    DownloadStatus.PAUSED: EventType.DOWNLOAD_PAUSED,
    DownloadStatus.COMPLETED: EventType.DOWNLOAD_COMPLETED,
    DownloadStatus.FAILED: EventType.DOWNLOAD_FAILED,
    DownloadStatus.CANCELLED: EventType.DOWNLOAD_CANCELLED,
}

FINISHED_EVENTS = frozenset(
    {
        EventType.DOWNLOAD_COMPLETED,
        EventType.DOWNLOAD_FAILED,
        EventType.DOWNLOAD_CANCELLED,
    }
)
FINAL_IMPORT_STEPS = frozenset({ImportStep.DONE, ImportStep.FAILED, ImportStep.CANCELLED})

# Import operations whose last step is remembered, to tell a new step from progress.
OPERATIONS_TRACKED = 100


@dataclass(frozen=True)
class Event:
    id: int
    type: EventType
    subject: str  # DOWNLOAD or OPERATION
    record: dict

    @property
    def finished(self) -> bool:
        """A download reached a final status, or an import operation a final step."""
        if self.subject == DOWNLOAD:
            return self.type in FINISHED_EVENTS
        return self.type == EventType.IMPORT_STEP and self.record.get("step") in FINAL_IMPORT_STEPS


class Subscription:
    """One listener's queue. `wake` is called (from a publishing thread) when the queue,
    emptied by the last `take`, gets something new, and when the subscription closes:
    a listener that takes everything each time it is woken misses nothing, and a burst
    of events wakes it once, not once per event."""

    def __init__(self, capacity: int, wake: Callable[[], None]):
        self._capacity = capacity
        self._wake = wake
        self._queue: deque[Event] = deque()
        self._lock = threading.Lock()
        self.closed = False
        self.overflowed = False

    def offer(self, event: Event) -> None:
        with self._lock:
            if self.closed:
                return
            if len(self._queue) >= self._capacity:
                self.closed = self.overflowed = True
                self._queue.clear()
                first = True
            else:
                first = not self._queue
                self._queue.append(event)
        if first:
            self._notify()

    def take(self) -> list[Event]:
        with self._lock:
            events = list(self._queue)
            self._queue.clear()
            return events

    def close(self) -> None:
        with self._lock:
            self.closed = True
        self._notify()

    def _notify(self) -> None:
        try:
            self._wake()
        except Exception:  # the listener's loop has gone: it will not read again
            log.debug("could not wake an event subscriber", exc_info=True)


class EventBus:
    def __init__(
        self,
        *,
        replay_size: int = 1000,
        queue_size: int = 1000,
        keepalive_seconds: float = 15.0,
    ):
        """`replay_size` events are kept for Last-Event-ID; a subscriber more than
        `queue_size` events behind is closed. Streams send a keep-alive comment every
        `keepalive_seconds`."""
        self.keepalive_seconds = keepalive_seconds
        self._queue_size = queue_size
        self._buffer: deque[Event] = deque(maxlen=replay_size)
        self._subscribers: set[Subscription] = set()
        self._listeners: list[Callable[[Event], None]] = []
        self._lock = threading.Lock()
        self._last_id = 0
        self._closed = False
        # Tells each event published here to the other processes (set by the server
        # when several share a database).
        self.relay: Callable[[Event], None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def last_id(self) -> int:
        """The id of the newest event so far (0 before the first)."""
        with self._lock:
            return self._last_id

    def publish(self, type: EventType, subject: str, record: dict) -> Event:
        """Number `record`'s event, keep it for replay and hand it to every subscriber and
        listener, and to the relay that tells other processes; never blocks on them."""
        event = self._publish(type, subject, record, listeners=True)
        if self.relay is not None:
            try:
                self.relay(event)
            except Exception:
                log.exception("could not tell other processes of %s", type)
        return event

    def deliver(self, type: EventType, subject: str, record: dict) -> Event:
        """An event another process published, for this process's subscribers (its
        streams): numbered and kept for replay here, but not handed to listeners, which
        heard it where it happened (a webhook is sent once)."""
        return self._publish(type, subject, record, listeners=False)

    def _publish(self, type: EventType, subject: str, record: dict, *, listeners: bool) -> Event:
        with self._lock:
            self._last_id += 1
            event = Event(self._last_id, type, subject, record)
            self._buffer.append(event)
            subscribers = list(self._subscribers)
            told = list(self._listeners) if listeners else []
        for subscription in subscribers:
            subscription.offer(event)
        for listener in told:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed on %s", type)
        return event

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """`listener` hears every event from the publishing thread; it must be quick."""
        with self._lock:
            self._listeners.append(listener)

    def subscribe(
        self, wake: Callable[[], None], after: int | None = None
    ) -> tuple[Subscription, list[Event]]:
        """A new subscription, and the buffered events numbered after `after` (none
        without it; all of them for an id this process has not given yet); nothing
        published meanwhile is lost or told twice."""
        subscription = Subscription(self._queue_size, wake)
        with self._lock:
            if after is not None and after > self._last_id:
                # An id from before a restart (ids count per process): all there is is new.
                after = 0
            replay = [e for e in self._buffer if e.id > after] if after is not None else []
            if self._closed:
                subscription.closed = True
            else:
                self._subscribers.add(subscription)
        return subscription, replay

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    def close(self) -> None:
        """End every subscription, now and to come: the server is stopping."""
        with self._lock:
            self._closed = True
            subscribers = list(self._subscribers)
            self._subscribers.clear()
        for subscription in subscribers:
            subscription.close()


class ImportEvents:
    """Tells each stored status of an import operation: `import.step` when its step
    changed, `import.progress` when only its counts did."""

    def __init__(self, bus: EventBus, view: Callable[[dict], dict]):
        """`view` turns a stored operation into the event's `operation` object."""
        self._bus = bus
        self._view = view
        self._steps: dict[str, str] = {}
        self._lock = threading.Lock()

    def operation_stored(self, operation: dict) -> None:
        op_id, step = operation["_id"], operation["status"]
        with self._lock:
            previous = self._steps.pop(op_id, None)
            self._steps[op_id] = step  # newest last
            while len(self._steps) > OPERATIONS_TRACKED:
                del self._steps[next(iter(self._steps))]
        kind = EventType.IMPORT_PROGRESS if previous == step else EventType.IMPORT_STEP
        self._bus.publish(kind, OPERATION, self._view(operation))


class EventFanOut:
    """Several processes on one database: each event published in one reaches the
    streams of all (a worker's progress, a download started through another instance).
    `channel` is the storage's channel every process hears (send / start / stop)."""

    def __init__(self, bus: EventBus, channel):
        self._bus = bus
        self._channel = channel
        # Tells this process's own messages, which the channel also brings back, apart.
        self.origin = secrets.token_hex(8)
        bus.relay = self.tell

    def tell(self, event: Event) -> None:
        message = {
            "origin": self.origin,
            "type": str(event.type),
            "subject": event.subject,
            "record": event.record,
        }
        if not self._channel.send(message):
            log.info("%s of %s is too large to tell other processes", event.type, event.subject)

    def start(self) -> None:
        """Hear the other processes' events (a server does; a worker only tells)."""
        self._channel.start(self.heard)

    def heard(self, message: dict) -> None:
        if message.get("origin") == self.origin:
            return
        try:
            kind = EventType(message.get("type"))
        except ValueError:
            log.warning("an event of an unknown type was heard; skipped")
            return
        subject, record = message.get("subject"), message.get("record")
        if subject not in (DOWNLOAD, OPERATION) or not isinstance(record, dict):
            log.warning("a malformed event was heard; skipped")
            return
        self._bus.deliver(kind, subject, record)

    def stop(self) -> None:
        self._channel.stop()


def download_event_type(record: dict, *, resumed: bool = False) -> EventType | None:
    """The event a download's newly recorded status is told as."""
    if resumed:
        return EventType.DOWNLOAD_RESUMED
    return DOWNLOAD_STATUS_EVENTS.get(record["status"])
