"""The event bus: numbering, replay, bounded queues, closing; import step vs progress."""

from __future__ import annotations

from ferry.events import (
    DOWNLOAD,
    OPERATION,
    EventBus,
    EventFanOut,
    ImportEvents,
    download_event_type,
)
from ferry.kernel.statuses import DownloadStatus, EventType


def publish(bus: EventBus, n: int) -> list[int]:
    return [bus.publish(EventType.DOWNLOAD_PROGRESS, DOWNLOAD, {"n": i}).id for i in range(n)]


def test_events_are_numbered_in_order_and_reach_every_subscriber():
    bus = EventBus()
    woken = []
    first, _ = bus.subscribe(lambda: woken.append(1))
    second, _ = bus.subscribe(lambda: None)
    ids = publish(bus, 3)
    assert ids == [1, 2, 3]
    assert [e.id for e in first.take()] == ids == [e.id for e in second.take()]
    assert first.take() == [] and woken


def test_a_burst_wakes_its_subscriber_once_and_the_next_event_after_a_take_again():
    bus = EventBus()
    woken = []
    subscription, _ = bus.subscribe(lambda: woken.append(1))
    publish(bus, 5)
    assert len(woken) == 1
    assert len(subscription.take()) == 5
    publish(bus, 2)
    assert len(woken) == 2
    subscription.close()
    assert len(woken) == 3


def test_replay_gives_the_held_events_after_an_id_and_the_buffer_is_bounded():
    bus = EventBus(replay_size=5)
    publish(bus, 8)
    _, replay = bus.subscribe(lambda: None, after=5)
    assert [e.id for e in replay] == [6, 7, 8]
    _, replay = bus.subscribe(lambda: None, after=0)
    assert [e.id for e in replay] == [4, 5, 6, 7, 8]
    _, replay = bus.subscribe(lambda: None)
    assert replay == []


def test_an_id_this_process_never_gave_replays_all_it_holds():
    bus = EventBus()
    publish(bus, 2)
    _, replay = bus.subscribe(lambda: None, after=500)
    assert [e.id for e in replay] == [1, 2]


def test_a_subscriber_that_falls_behind_is_closed_not_grown():
    bus = EventBus(queue_size=3)
    slow, _ = bus.subscribe(lambda: None)
    publish(bus, 4)
    assert slow.closed and slow.overflowed
    assert slow.take() == []
    publish(bus, 100)
    assert slow.take() == []


def test_closing_the_bus_closes_every_subscription_and_later_ones():
    bus = EventBus()
    woken = []
    subscription, _ = bus.subscribe(lambda: woken.append(1))
    bus.close()
    assert subscription.closed and woken
    later, _ = bus.subscribe(lambda: None)
    assert later.closed


def test_a_failing_wake_or_listener_does_not_stop_the_publisher():
    bus = EventBus()

    def broken(*_):
        raise RuntimeError("loop closed")

    bus.subscribe(broken)
    bus.add_listener(broken)
    heard = []
    bus.add_listener(heard.append)
    publish(bus, 1)
    assert len(heard) == 1


def test_an_import_operation_is_told_as_a_step_when_its_step_changes():
    bus = EventBus()
    subscription, _ = bus.subscribe(lambda: None)
    events = ImportEvents(bus, lambda op: {"id": op["_id"], "step": op["status"]})
    for status in ("importer_new", "importer_importing_users", "importer_importing_users"):
        events.operation_stored({"_id": "op", "status": status})
    told = subscription.take()
    assert [e.type for e in told] == [
        EventType.IMPORT_STEP,
        EventType.IMPORT_STEP,
        EventType.IMPORT_PROGRESS,
    ]
    assert told[0].subject == OPERATION and told[1].record["step"] == "importer_importing_users"


def test_each_download_status_maps_to_its_event():
    def event(status, **kw):
        return download_event_type({"status": status}, **kw)

    assert event(DownloadStatus.STARTING) == EventType.DOWNLOAD_STARTED
    assert event(DownloadStatus.STARTING, resumed=True) == EventType.DOWNLOAD_RESUMED
    assert event(DownloadStatus.DOWNLOADING) == EventType.DOWNLOAD_PROGRESS
    assert event(DownloadStatus.COMPLETED) == EventType.DOWNLOAD_COMPLETED
    assert event(DownloadStatus.FAILED) == EventType.DOWNLOAD_FAILED
    assert event(DownloadStatus.CANCELLED) == EventType.DOWNLOAD_CANCELLED
    assert all(download_event_type({"status": s}) for s in DownloadStatus)


class FakeChannel:
    """What the storage's channel does, between processes in one test: every sent
    message reaches every started channel, its sender's too."""

    def __init__(self, hub: list, limit: int = 7900):
        self.hub, self.limit, self.heard = hub, limit, None
        hub.append(self)

    def send(self, message: dict) -> bool:
        if len(str(message)) > self.limit:
            return False
        for channel in self.hub:
            if channel.heard is not None:
                channel.heard(message)
        return True

    def start(self, on_message) -> None:
        self.heard = on_message

    def stop(self) -> None:
        self.heard = None


def test_an_event_reaches_the_streams_of_other_processes_once_and_their_listeners_never():
    hub: list = []
    worker, server = EventBus(), EventBus()
    worker_out, server_out = (
        EventFanOut(worker, FakeChannel(hub)),
        EventFanOut(server, FakeChannel(hub)),
    )
    server_out.start()  # a worker only tells; a server also hears
    webhooks_on_server = []
    server.add_listener(webhooks_on_server.append)
    stream, _ = server.subscribe(lambda: None)
    own_stream, _ = worker.subscribe(lambda: None)

    worker.publish(EventType.DOWNLOAD_COMPLETED, DOWNLOAD, {"id": "d1"})

    assert [(e.type, e.record) for e in stream.take()] == [
        (EventType.DOWNLOAD_COMPLETED, {"id": "d1"})
    ]
    assert len(own_stream.take()) == 1
    assert webhooks_on_server == []  # the webhook went out where the download finished
    # The server's own events come back to it through the channel and are not told twice.
    server.publish(EventType.DOWNLOAD_STARTED, DOWNLOAD, {"id": "d2"})
    assert [e.record for e in stream.take()] == [{"id": "d2"}]
    assert len(webhooks_on_server) == 1
    worker_out.stop()


def test_malformed_or_oversized_messages_are_skipped():
    hub: list = []
    bus = EventBus()
    fan_out = EventFanOut(bus, FakeChannel(hub, limit=200))
    fan_out.start()
    stream, _ = bus.subscribe(lambda: None)
    for message in (
        {"origin": "other", "type": "no.such.event", "subject": DOWNLOAD, "record": {}},
        {"origin": "other", "type": "download.started", "subject": "users", "record": {}},
        {"origin": "other", "type": "download.started", "subject": DOWNLOAD, "record": []},
    ):
        fan_out.heard(message)
    assert stream.take() == []
    other = EventBus()
    EventFanOut(other, FakeChannel(hub, limit=200))
    other.publish(EventType.DOWNLOAD_PROGRESS, DOWNLOAD, {"id": "x" * 500})  # too large
    other.publish(EventType.DOWNLOAD_PROGRESS, DOWNLOAD, {"id": "small"})
    assert [e.record for e in stream.take()] == [{"id": "small"}]


def test_last_id_names_the_newest_event_and_replay_goes_on_from_it():
    bus = EventBus()
    assert bus.last_id == 0
    publish(bus, 2)
    seen = bus.last_id
    publish(bus, 1)  # happens between a page's render and its stream connecting
    _, replay = bus.subscribe(lambda: None, after=seen)
    assert seen == 2 and [event.id for event in replay] == [3]
