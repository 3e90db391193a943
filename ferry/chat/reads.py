"""Rocket.Chat-shaped answers for the workspace read endpoints.

The lead's handlers parse the query string, call one function here and add
`success: true`. Errors are the exceptions below; each knows Rocket.Chat's body.

    q = WorkspaceQueries(workspace_store)
    q.channels_list(offset, count) -> {"channels": [...], "count", "offset", "total"}
    q.groups_list(offset, count)   -> {"groups": [...], ...}
    q.im_list(offset, count)       -> {"ims": [...], ...}
    q.channel_info(room_id=..., room_name=...) -> {"channel": {...}}   (group_info -> "group")
    q.channel_history(room_id, room_name, *, latest=, oldest=, inclusive=, offset=,
                      count=, show_thread_messages=, with_totals=) -> {"messages": [...]}
    (group_history, im_history alike; all are history("c"|"p"|"d", ...))

History follows Rocket.Chat's getChannelHistory: newest first; `latest` and `oldest`
are exclusive bounds unless `inclusive`; `latest`/`oldest` are ISO dates (compared at
millisecond precision, like a JavaScript Date) or Unix epochs (seconds with up to
microsecond fraction, or milliseconds when larger than 1e11); hidden messages never
show; thread replies show only with `show_thread_messages` (Rocket.Chat's REST
default is false) or when broadcast. Rocket.Chat answers only `{messages}`;
`with_totals=True` adds `count`, `offset` and `total`.

Listing is not filtered by membership: Ferry serves an imported workspace to its
admins, so `groups.list` and `im.list` list every private group and DM.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import partialmethod
from typing import Any

from ferry.kernel.errors import MeteorError
from ferry.kernel.statuses import RoomType
from storage.workspace import WorkspaceStore

_KINDS = {
    RoomType.CHANNEL: ("channel", "channels"),
    RoomType.PRIVATE_GROUP: ("group", "groups"),
    RoomType.DIRECT: ("im", "ims"),
}
_NOT_FOUND = {
    RoomType.CHANNEL: (
        'The required "roomId" or "roomName" param provided does not match any channel'
    ),
    RoomType.PRIVATE_GROUP: (
        'The required "roomId" or "roomName" param provided does not match any group'
    ),
    RoomType.DIRECT: 'The required "roomId" param provided does not match any direct message',
}
# Fields only Ferry uses; the file's download URL can carry an export token.
_PRIVATE_MESSAGE_FIELDS = ("_sort", "_importFile")
_ISO_FRACTION = re.compile(r"\.(\d+)")


class WorkspaceQueryError(MeteorError):
    """Base for errors Rocket.Chat answers as `{success:false, error, errorType}` (400)."""

    default_type = "error-invalid-params"

    def __init__(self, message: str, error_type: str | None = None):
        super().__init__(error_type or self.default_type, message)


class RoomNotFound(WorkspaceQueryError):
    """No room of the endpoint's type has that id or name (HTTP 400 in Rocket.Chat)."""

    def __init__(self, room_type: str = RoomType.CHANNEL):
        super().__init__(_NOT_FOUND[room_type], "error-room-not-found")


class RoomParamMissing(WorkspaceQueryError):
    def __init__(self):
        message = 'The parameter "roomId" or "roomName" is required'
        super().__init__(message, "error-room-param-not-provided")


class InvalidQuery(WorkspaceQueryError):
    """A paging or date parameter cannot be used (`error-invalid-params`)."""


def parse_moment(value: Any) -> tuple[int, bool]:
    """An ISO date or Unix epoch to `(microseconds, millisecond_precision)`."""
    if isinstance(value, bool) or value is None:
        raise InvalidQuery(f"Invalid date {value!r}")
    if isinstance(value, int | float):
        return _from_epoch(float(value), str(value))
    text = str(value).strip()
    try:
        return _from_epoch(float(text), text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidQuery(f"Invalid date {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    fraction = _ISO_FRACTION.search(text)
    millisecond_precision = not fraction or len(fraction.group(1)) <= 3
    if millisecond_precision:
        micros -= micros % 1000
    return micros, millisecond_precision


def _from_epoch(number: float, text: str) -> tuple[int, bool]:
    if number != number or abs(number) > 1e15:
        raise InvalidQuery(f"Invalid date {text!r}")
    if abs(number) > 1e11:
        return round(number) * 1000, True
    return round(number * 1_000_000), False


def history_bounds(
    latest: Any = None,
    oldest: Any = None,
    inclusive: bool = False,
) -> tuple[int | None, int | None]:
    """`(since, before)` in microseconds for WorkspaceStore.history.

    At millisecond precision a message matches as Rocket.Chat's Date comparison would
    see it: by its `ts` truncated to the millisecond.
    """
    since = before = None
    if latest is not None:
        micros, coarse = parse_moment(latest)
        step = 1000 if coarse else 1
        before = micros + step if inclusive else micros
    if oldest is not None:
        micros, coarse = parse_moment(oldest)
        step = 1000 if coarse else 1
        since = micros if inclusive else micros + step
    return since, before


def _message(message: dict) -> dict:
    for key in _PRIVATE_MESSAGE_FIELDS:
        message.pop(key, None)
    return message


def _room(room: dict) -> dict:
    if isinstance(room.get("lastMessage"), dict):
        _message(room["lastMessage"])
    return room


def _paging(offset: Any, count: Any) -> tuple[int, int]:
    try:
        offset, count = int(offset), int(count)
    except (TypeError, ValueError):
        raise InvalidQuery("offset and count must be integers") from None
    if offset < 0 or count < 0:
        raise InvalidQuery("offset and count must not be negative")
    return offset, count


class WorkspaceQueries:
    def __init__(self, workspace: WorkspaceStore):
        self._workspace = workspace

    # --- lists ---------------------------------------------------------------

    def _list(self, room_type: str, offset: Any, count: Any) -> dict[str, Any]:
        offset, count = _paging(offset, count)
        rooms, total = self._workspace.rooms(room_type, offset, count)
        return {
            _KINDS[room_type][1]: [_room(r) for r in rooms],
            "count": len(rooms),
            "offset": offset,
            "total": total,
        }

    def channels_list(self, offset: Any = 0, count: Any = 50) -> dict[str, Any]:
        return self._list(RoomType.CHANNEL, offset, count)

    def groups_list(self, offset: Any = 0, count: Any = 50) -> dict[str, Any]:
        return self._list(RoomType.PRIVATE_GROUP, offset, count)

    def im_list(self, offset: Any = 0, count: Any = 50) -> dict[str, Any]:
        return self._list(RoomType.DIRECT, offset, count)

    # --- one room ------------------------------------------------------------

    def find_room(
        self, room_type: str, room_id: str | None = None, room_name: str | None = None
    ) -> dict:
        """The room of that type by id (preferred) or name, or RoomNotFound."""
        room_id = (room_id or "").strip()
        room_name = (room_name or "").strip()
        if not room_id and not room_name:
            raise RoomParamMissing()
        room = self._workspace.room(room_id) if room_id else self._workspace.room_by_name(room_name)
        if room is None or room.get("t") != room_type:
            raise RoomNotFound(room_type)
        return _room(room)

    def channel_info(self, room_id: str | None = None, room_name: str | None = None) -> dict:
        return {"channel": self.find_room(RoomType.CHANNEL, room_id, room_name)}

    def group_info(self, room_id: str | None = None, room_name: str | None = None) -> dict:
        return {"group": self.find_room(RoomType.PRIVATE_GROUP, room_id, room_name)}

    # --- history -------------------------------------------------------------

    def history(
        self,
        room_type: str,
        room_id: str | None = None,
        room_name: str | None = None,
        *,
        latest: Any = None,
        oldest: Any = None,
        inclusive: bool = False,
        offset: Any = 0,
        count: Any = 20,
        show_thread_messages: bool = False,
        with_totals: bool = False,
    ) -> dict[str, Any]:
        """`{messages}` of a room of `room_type`; see the module docstring."""
        room = self.find_room(room_type, room_id, room_name)
        offset, count = _paging(offset, count)
        since, before = history_bounds(latest, oldest, inclusive)
        messages, total = self._workspace.history(
            room["_id"],
            since=since,
            before=before,
            offset=offset,
            count=count,
            thread_messages=show_thread_messages,
        )
        result: dict[str, Any] = {"messages": [_message(m) for m in messages]}
        if with_totals:
            result.update(count=len(messages), offset=offset, total=total)
        return result

    channel_history = partialmethod(history, RoomType.CHANNEL)
    group_history = partialmethod(history, RoomType.PRIVATE_GROUP)
    im_history = partialmethod(history, RoomType.DIRECT)
