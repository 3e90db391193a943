"""GET /api/v1/events: the live event stream (server-sent events)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson
from connexion import request
from starlette.responses import Response, StreamingResponse

from ferry.events import Event, EventBus, Subscription
from handlers.context import current_principal, services

STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


async def stream_events(timeout=None, last_event_id=None):
    """GET /api/v1/events"""
    if request.method == "HEAD":
        # The headers a stream would start with, and no stream to hold open.
        return Response(media_type="text/event-stream", headers=STREAM_HEADERS)
    principal = current_principal()
    token, user_id = principal["token"], principal["user"]["_id"]

    def current_view() -> Callable[[Event], dict | None] | None:
        # Looked up again at every keep-alive: a token revoked (logout) or a role taken
        # away while the stream is open counts within one keep-alive interval.
        user = services().accounts.user_for_token(token, user_id)
        return services().event_view(user) if user is not None else None

    view = services().event_view(principal["user"])
    header = request.headers.get("last-event-id", "").strip()
    after = int(header) if header.isdigit() else last_event_id
    bus = services().events
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()

    def wake() -> None:
        loop.call_soon_threadsafe(ready.set)

    subscription, replay = bus.subscribe(wake, after)
    frames = _frames(bus, subscription, replay, view, current_view, ready, timeout)
    return StreamingResponse(frames, media_type="text/event-stream", headers=STREAM_HEADERS)


def _frame(event: Event, data: dict) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        event.id,
        event.type.encode(),
        orjson.dumps(data),
    )


async def _frames(
    bus: EventBus,
    subscription: Subscription,
    replay: list[Event],
    view: Callable[[Event], dict | None],
    current_view: Callable[[], Callable[[Event], dict | None] | None],
    ready: asyncio.Event,
    timeout: float | None,
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    pending = replay
    try:
        # A first line at once, so the caller (and any proxy) sees the stream has begun.
        yield b": connected\n\n"
        while True:
            ready.clear()
            batch = b"".join(
                _frame(event, data)
                for event in [*pending, *subscription.take()]
                if (data := view(event)) is not None
            )
            pending = []
            if batch:
                yield batch
            if subscription.closed:
                return
            wait = bus.keepalive_seconds
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    return
            try:
                await asyncio.wait_for(ready.wait(), wait)
            except TimeoutError:
                if deadline is not None and loop.time() >= deadline:
                    continue
                refreshed = current_view()
                if refreshed is None:
                    return
                view = refreshed
                yield b": keep-alive\n\n"
    finally:
        bus.unsubscribe(subscription)
