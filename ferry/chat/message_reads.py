"""chat.getMessage, chat.getThreadMessages and chat.getThreadsList over the workspace.

    reads = MessageReads(queries, workspace_store)
    reads.message(reader, msg_id)                     -> {"message": {...}}
    reads.thread_messages(reader, tmid, offset=, count=, sort=, query=, fields=)
        -> {"messages": [...], "count", "offset", "total"}     (oldest first)
    reads.threads(reader, rid, kind=, text=, offset=, count=, sort=, query=, fields=)
        -> {"threads": [...], "count", "offset", "total"}      (latest reply first)

A message is read through its room: a reader who may not read the room gets the same
answer as for a message, thread or room that does not exist (`error-not-allowed`),
and a hidden message does not exist for anyone. Rocket.Chat answers a missing
message with a bare `{success: false}` and an unreadable one with `error-not-allowed`;
Ferry answers both the second way, so the answer never confirms that an id exists.
"""

from __future__ import annotations

from typing import Any

from ferry.chat.list_query import MESSAGE_LIST, ListQuery, page_window
from ferry.chat.reads import Reader, WorkspaceQueries, shown_message
from ferry.kernel.errors import MeteorError, PlainRocketChatError
from ferry.kernel.statuses import ThreadFilter
from storage.workspace import WorkspaceStore


class MessageNotAllowed(MeteorError):
    def __init__(self):
        super().__init__("error-not-allowed", "Not allowed")


class MessageIdMissing(PlainRocketChatError):
    def __init__(self):
        super().__init__('The "msgId" query parameter must be provided.')


class ThreadIdMissing(MeteorError):
    def __init__(self):
        super().__init__("error-invalid-params", 'The required "tmid" query param is missing.')


class RoomIdMissing(MeteorError):
    def __init__(self):
        super().__init__(
            "error-room-id-param-not-provided", 'The required "rid" query param is missing.'
        )


class InvalidThreadFilter(MeteorError):
    def __init__(self):
        kinds = ", ".join(ThreadFilter)
        super().__init__("error-invalid-params", f'"type" must be one of {kinds}')


class MessageReads:
    def __init__(self, queries: WorkspaceQueries, workspace: WorkspaceStore):
        self._queries = queries
        self._workspace = workspace

    def _readable_message(self, reader: Reader, message_id: str) -> dict:
        message = self._workspace.message(message_id)
        if message is None or message.get("_hidden"):
            raise MessageNotAllowed()
        room = self._workspace.room(message["rid"])
        if room is None or not self._queries.may_read(room, reader):
            raise MessageNotAllowed()
        return message

    def message(self, reader: Reader, message_id: str | None) -> dict[str, Any]:
        if not message_id:
            raise MessageIdMissing()
        return {"message": shown_message(self._readable_message(reader, message_id))}

    @staticmethod
    def _page(
        key: str, items: list[dict], offset: Any, count: Any, habits: dict, default_sort: str
    ) -> dict[str, Any]:
        offset, count = page_window(offset, count)
        wanted = ListQuery.parse(
            MESSAGE_LIST, **{**habits, "sort": habits.get("sort") or default_sort}
        )
        page, total = wanted.page([shown_message(m) for m in items], offset, count)
        return {key: page, "count": len(page), "offset": offset, "total": total}

    def thread_messages(
        self,
        reader: Reader,
        thread_id: str | None,
        offset: Any = 0,
        count: Any = 50,
        **habits: Any,
    ) -> dict[str, Any]:
        """The visible replies of a thread, oldest first unless `sort` says otherwise;
        `habits` are `sort`, `query` and `fields`."""
        if not thread_id:
            raise ThreadIdMissing()
        root = self._readable_message(reader, thread_id)
        replies = self._workspace.thread_messages(root["rid"], thread_id)
        return self._page("messages", replies, offset, count, habits, '{"ts": 1}')

    def threads(
        self,
        reader: Reader,
        room_id: str | None,
        kind: str | None = None,
        text: str | None = None,
        offset: Any = 0,
        count: Any = 50,
        **habits: Any,
    ) -> dict[str, Any]:
        """The thread starts of a room, latest reply first unless `sort` says otherwise."""
        if not room_id:
            raise RoomIdMissing()
        try:
            kind = ThreadFilter(kind or ThreadFilter.ALL)
        except ValueError:
            raise InvalidThreadFilter() from None
        room = self._workspace.room(room_id)
        if room is None or not self._queries.may_read(room, reader):
            raise MessageNotAllowed()
        if kind == ThreadFilter.UNREAD:
            # Imported history counts as read: no thread has unread replies.
            roots: list[dict] = []
        else:
            roots = self._workspace.thread_roots(room_id)
        if kind == ThreadFilter.FOLLOWING:
            roots = [m for m in roots if reader.user_id in (m.get("replies") or [])]
        if text:
            needle = text.casefold()
            roots = [m for m in roots if needle in (m.get("msg") or "").casefold()]
        return self._page("threads", roots, offset, count, habits, '{"tlm": -1}')
