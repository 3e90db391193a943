"""Rocket.Chat-shaped answers for the workspace read endpoints.

The handlers parse the query string, call one function here with the caller as a
`Reader` and add `success: true`. Errors are the exceptions below; each knows
Rocket.Chat's body.

    q = WorkspaceQueries(workspace_store)
    q.channels_list(offset, count)          -> {"channels": [...], "count", "offset", "total"}
    q.groups_list(reader, offset, count)    -> the reader's private groups ({"groups": ...})
    q.im_list(reader, offset, count)        -> the reader's direct messages ({"ims": ...})
    q.groups_list_all(offset, count, sort=, query=)   (im_list_everyone alike)
    q.channel_info(reader, room_id=..., room_name=...) -> {"channel": {...}}  (group_info)
    q.channel_history(reader, room_id, room_name, *, latest=, oldest=, inclusive=, offset=,
                      count=, show_thread_messages=, with_totals=, sort=) -> {"messages": [...]}
    (group_history, im_history alike; all are history("c"|"p"|"d", reader, ...))

Who reads what, as Rocket.Chat's canAccessRoom decides it: a public channel anyone with
`view-c-room`; a private group or a direct-message room its members. Ferry adds one
rule: `view-room-administration` (admins) reads every room, since whoever imported the
workspace holds its export anyway. A room the reader may not read answers exactly as a
room that does not exist.

History follows Rocket.Chat's getChannelHistory: newest first; `latest` and `oldest`
are exclusive bounds unless `inclusive`; `latest`/`oldest` are ISO dates (compared at
millisecond precision, like a JavaScript Date) or Unix epochs (seconds with up to
microsecond fraction, or milliseconds when larger than 1e11); hidden messages never
show; thread replies show only with `show_thread_messages` (Rocket.Chat's REST
default is false) or when broadcast. Rocket.Chat answers only `{messages}`;
`with_totals=True` adds `count`, `offset` and `total`. Rocket.Chat's clients may send
`sort`, which its server accepts and ignores; Ferry honours `{"ts": 1}` (oldest first,
`offset` counted from the oldest) and `{"ts": -1}`, and refuses any other sort.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partialmethod
from typing import Any

from ferry.chat.list_query import HISTORY_LIST, ROOM_LIST, ListQuery, page_window
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
# Fields only Ferry uses, never shown: the order key, the import's file record (its
# download URL can carry an export token), the hidden flag, the source's ids.
PRIVATE_MESSAGE_FIELDS = ("_sort", "_importFile", "_hidden", "importIds")
PRIVATE_ROOM_FIELDS = ("importIds",)
_ISO_FRACTION = re.compile(r"\.(\d+)")

# Rocket.Chat's permission names the room rules read.
VIEW_PUBLIC_ROOMS = "view-c-room"
ROOM_ADMINISTRATION = "view-room-administration"


@dataclass(frozen=True)
class Reader:
    """Who asks: their user id and the permissions their roles grant."""

    user_id: str
    permissions: frozenset[str]


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


def shown_message(message: dict) -> dict:
    """The message as clients see it (changed in place)."""
    for key in PRIVATE_MESSAGE_FIELDS:
        message.pop(key, None)
    return message


def _room(room: dict) -> dict:
    for key in PRIVATE_ROOM_FIELDS:
        room.pop(key, None)
    if isinstance(room.get("lastMessage"), dict):
        shown_message(room["lastMessage"])
    return room


class WorkspaceQueries:
    def __init__(self, workspace: WorkspaceStore):
        self._workspace = workspace

    # --- lists ---------------------------------------------------------------

    @staticmethod
    def _page(
        room_type: str,
        fetch: Callable[[int, int | None], tuple[list[dict], int]],
        offset: Any,
        count: Any,
        habits: dict[str, Any],
    ) -> dict[str, Any]:
        """A page of rooms from `fetch(offset, count)`, with Rocket.Chat's `sort`, `query`
        and `fields` (`habits`) applied; filters and sorts read every room of the list."""
        offset, count = page_window(offset, count)
        wanted = ListQuery.parse(ROOM_LIST, **habits)
        if wanted.filters_or_sorts:
            rooms, total = wanted.page([_room(r) for r in fetch(0, None)[0]], offset, count)
        else:
            fetched, total = fetch(offset, count)
            rooms = [wanted.project(_room(r)) for r in fetched]
        return {
            _KINDS[room_type][1]: rooms,
            "count": len(rooms),
            "offset": offset,
            "total": total,
        }

    def _every(self, room_type: str, offset: Any, count: Any, habits: dict) -> dict[str, Any]:
        def fetch(start: int, limit: int | None) -> tuple[list[dict], int]:
            return self._workspace.rooms(room_type, start, limit)

        return self._page(room_type, fetch, offset, count, habits)

    def _joined(
        self, room_type: str, reader: Reader, offset: Any, count: Any, habits: dict
    ) -> dict[str, Any]:
        def fetch(start: int, limit: int | None) -> tuple[list[dict], int]:
            return self._workspace.member_rooms(reader.user_id, room_type, start, limit)

        return self._page(room_type, fetch, offset, count, habits)

    def channels_list(self, offset: Any = 0, count: Any = 50, **habits: Any) -> dict[str, Any]:
        """channels.list: every public channel; `habits` are `sort`, `query`, `fields`."""
        return self._every(RoomType.CHANNEL, offset, count, habits)

    def groups_list(
        self, reader: Reader, offset: Any = 0, count: Any = 50, **habits: Any
    ) -> dict[str, Any]:
        """groups.list: the private groups `reader` is a member of."""
        return self._joined(RoomType.PRIVATE_GROUP, reader, offset, count, habits)

    def im_list(
        self, reader: Reader, offset: Any = 0, count: Any = 50, **habits: Any
    ) -> dict[str, Any]:
        """im.list: the direct-message rooms `reader` is a member of."""
        return self._joined(RoomType.DIRECT, reader, offset, count, habits)

    def joined_rooms(self, reader: Reader) -> list[dict]:
        """Every room `reader` is a member of: channels, then groups, then direct messages,
        each by name."""
        return [
            _room(room)
            for room_type in (RoomType.CHANNEL, RoomType.PRIVATE_GROUP, RoomType.DIRECT)
            for room in self._workspace.member_rooms(reader.user_id, room_type)[0]
        ]

    def groups_list_all(self, offset: Any = 0, count: Any = 50, **habits: Any) -> dict[str, Any]:
        """groups.listAll: every private group (the caller holds view-room-administration)."""
        return self._every(RoomType.PRIVATE_GROUP, offset, count, habits)

    def im_list_everyone(self, offset: Any = 0, count: Any = 50, **habits: Any) -> dict[str, Any]:
        """im.list.everyone: every direct-message room (view-room-administration)."""
        return self._every(RoomType.DIRECT, offset, count, habits)

    # --- who reads what --------------------------------------------------------

    def may_read(self, room: dict, reader: Reader) -> bool:
        """Rocket.Chat's canAccessRoom for imported rooms, plus Ferry's admin rule."""
        if ROOM_ADMINISTRATION in reader.permissions:
            return True
        if room.get("t") == RoomType.CHANNEL and VIEW_PUBLIC_ROOMS in reader.permissions:
            return True
        return self._workspace.is_member(room["_id"], reader.user_id)

    # --- one room ------------------------------------------------------------

    def find_room(
        self,
        room_type: str,
        reader: Reader,
        room_id: str | None = None,
        room_name: str | None = None,
    ) -> dict:
        """The room of that type by id (preferred) or name, or RoomNotFound when there is
        none or `reader` may not read it."""
        room_id = (room_id or "").strip()
        room_name = (room_name or "").strip()
        if not room_id and not room_name:
            raise RoomParamMissing()
        room = self._workspace.room(room_id) if room_id else self._workspace.room_by_name(room_name)
        if room is None or room.get("t") != room_type or not self.may_read(room, reader):
            raise RoomNotFound(room_type)
        return _room(room)

    def find_any_room(
        self, reader: Reader, room_id: str | None = None, room_name: str | None = None
    ) -> dict:
        """A room of any type by id (preferred) or name, or RoomNotFound as find_room."""
        room_id = (room_id or "").strip()
        room_name = (room_name or "").strip()
        if not room_id and not room_name:
            raise RoomParamMissing()
        room = self._workspace.room(room_id) if room_id else self._workspace.room_by_name(room_name)
        if room is None or not self.may_read(room, reader):
            raise RoomNotFound(room.get("t", RoomType.CHANNEL) if room else RoomType.CHANNEL)
        return _room(room)

    def member_ids(self, room_id: str) -> list[str]:
        return self._workspace.members(room_id)

    def channel_info(
        self, reader: Reader, room_id: str | None = None, room_name: str | None = None
    ) -> dict:
        return {"channel": self.find_room(RoomType.CHANNEL, reader, room_id, room_name)}

    def group_info(
        self, reader: Reader, room_id: str | None = None, room_name: str | None = None
    ) -> dict:
        return {"group": self.find_room(RoomType.PRIVATE_GROUP, reader, room_id, room_name)}

    # --- history -------------------------------------------------------------

    def history(
        self,
        room_type: str,
        reader: Reader,
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
        sort: str | None = None,
    ) -> dict[str, Any]:
        """`{messages}` of a room of `room_type`; see the module docstring."""
        room = self.find_room(room_type, reader, room_id, room_name)
        offset, count = page_window(offset, count)
        order = ListQuery.parse(HISTORY_LIST, sort=sort).order
        since, before = history_bounds(latest, oldest, inclusive)
        messages, total = self._workspace.history(
            room["_id"],
            since=since,
            before=before,
            offset=offset,
            count=count,
            thread_messages=show_thread_messages,
            newest_first=order != (("ts", 1),),
        )
        result: dict[str, Any] = {"messages": [shown_message(m) for m in messages]}
        if with_totals:
            result.update(count=len(messages), offset=offset, total=total)
        return result

    channel_history = partialmethod(history, RoomType.CHANNEL)
    group_history = partialmethod(history, RoomType.PRIVATE_GROUP)
    im_history = partialmethod(history, RoomType.DIRECT)
