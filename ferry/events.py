"""Live events: each change of a download or an import operation, numbered and told to
whoever listens (the event stream's subscribers, the webhooks).

Publishers are worker threads; they never wait for a listener. Every subscriber has a
bounded queue: one that falls that far behind is closed (its client reconnects with the
last id it got and is replayed what the bounded buffer still holds), so a slow client
cannot make the server hold an unbounded backlog.
"""

from __future__ import annotations

import logging
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
    """One listener's queue. `wake` is called (from a publishing thread) whenever there
    is something new to take, or the subscription closed."""

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
            else:
                self._queue.append(event)
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

    @property
    def closed(self) -> bool:
        return self._closed

    def publish(self, type: EventType, subject: str, record: dict) -> Event:
        """Number `record`'s event, keep it for replay and hand it to every subscriber and
        listener; never blocks on them."""
        with self._lock:
            self._last_id += 1
            event = Event(self._last_id, type, subject, record)
            self._buffer.append(event)
            subscribers = list(self._subscribers)
            listeners = list(self._listeners)
        for subscription in subscribers:
            subscription.offer(event)
        for listener in listeners:
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


def download_event_type(record: dict, *, resumed: bool = False) -> EventType | None:
    """The event a download's newly recorded status is told as."""
    if resumed:
        return EventType.DOWNLOAD_RESUMED
    return DOWNLOAD_STATUS_EVENTS.get(record["status"])
