"""Rooms, members, messages and uploads of the imported workspace on PostgreSQL.

The same methods as storage.workspace.WorkspaceStore. Every message must carry
`_sort`; documents returned are the caller's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ferry.kernel.statuses import RoomType
from storage.message_shards import is_pending_file
from storage.postgres.connection import Database, document
from storage.workspace import MessageWriter

# Messages read per round trip when a room is walked from oldest to newest.
_WALK_BATCH = 1000
_ROOM_ORDER = 'ORDER BY sort_name, id COLLATE "C"'


def members_key(user_ids: Iterable[str]) -> str:
    return ",".join(sorted(set(user_ids)))


def _room_columns(room: dict) -> tuple:
    """t, name, sort_name, members_key, import_ids of `room`."""
    direct = room.get("t") == RoomType.DIRECT and room.get("uids")
    return (
        room["t"],
        room.get("name"),
        room.get("name") or ",".join(room.get("usernames") or []),
        members_key(room["uids"]) if direct else None,
        list(room.get("importIds") or []),
    )


def _message_row(message: dict) -> tuple:
    hidden = bool(message.get("_hidden"))
    main = not hidden and (not message.get("tmid") or bool(message.get("tshow")))
    # "" for a pending file without an id: counted and listed, never matched by id.
    pending = (message["_importFile"].get("id") or "") if is_pending_file(message) else None
    return (
        message["rid"],
        message["_id"],
        message["_sort"],
        document(message),
        not hidden,
        main,
        pending,
    )


class WorkspaceStore:
    def __init__(self, database: Database):
        self._db = database

    members_key = staticmethod(members_key)

    # --- rooms ---------------------------------------------------------------

    def insert_rooms(self, rooms: Iterable[dict]) -> None:
        """Insert new rooms in one transaction; each needs a unique `_id` and `t`."""
        rows = [(r["_id"], document(r), *_room_columns(r)) for r in rooms]
        if not rows:
            return
        with self._db.transaction() as connection, connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO rooms (id, doc, t, name, sort_name, members_key, import_ids) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )

    def update_rooms(self, changes: dict[str, dict]) -> None:
        """Apply `{room_id: top-level fields}` in one transaction; unknown rooms are ignored."""
        if not changes:
            return
        with self._db.transaction() as connection:
            rows = connection.execute(
                "SELECT id, doc FROM rooms WHERE id = ANY(%s) FOR UPDATE", (list(changes),)
            ).fetchall()
            updated = []
            for room_id, room in rows:
                room.update(changes[room_id])
                updated.append((document(room), *_room_columns(room), room_id))
            if updated:
                with connection.cursor() as cursor:
                    cursor.executemany(
                        "UPDATE rooms SET doc = %s, "
                        "(t, name, sort_name, members_key, import_ids) = (%s, %s, %s, %s, %s) "
                        "WHERE id = %s",
                        updated,
                    )

    def _room_where(self, condition: str, params: tuple) -> dict | None:
        with self._db.connection() as connection:
            row = connection.execute(
                f"SELECT doc FROM rooms WHERE {condition} ORDER BY inserted LIMIT 1", params
            ).fetchone()
        return row[0] if row else None

    def room(self, room_id: str) -> dict | None:
        return self._room_where("id = %s", (room_id,))

    def room_by_name(self, name: str) -> dict | None:
        return self._room_where("name = %s", (name,))

    def room_by_import_id(self, import_id: str) -> dict | None:
        return self._room_where("import_ids @> ARRAY[%s]", (import_id,))

    def direct_room_by_members(self, user_ids: Iterable[str]) -> dict | None:
        return self._room_where("t = 'd' AND members_key = %s", (members_key(user_ids),))

    def rooms(
        self,
        room_type: str | None,
        offset: int = 0,
        count: int | None = None,
    ) -> tuple[list[dict], int]:
        """Rooms of one type (`c`, `p`, `d`; None for all) by name then id; `(page, total)`."""
        where, params = ("WHERE t = %s", (room_type,)) if room_type else ("", ())
        with self._db.connection() as connection:
            rows = connection.execute(
                f"SELECT doc FROM rooms {where} {_ROOM_ORDER} OFFSET %s LIMIT %s",
                (*params, max(offset, 0), count),
            ).fetchall()
            total = connection.execute(f"SELECT count(*) FROM rooms {where}", params).fetchone()[0]
        return [row[0] for row in rows], total

    def room_count(self) -> int:
        with self._db.connection() as connection:
            return connection.execute("SELECT count(*) FROM rooms").fetchone()[0]

    def members(self, room_id: str) -> list[str]:
        with self._db.connection() as connection:
            rows = connection.execute(
                'SELECT user_id FROM room_members WHERE room_id = %s ORDER BY user_id COLLATE "C"',
                (room_id,),
            ).fetchall()
        return [row[0] for row in rows]

    def set_members(self, room_id: str, user_ids: Iterable[str]) -> None:
        members = sorted(set(user_ids))
        with self._db.transaction() as connection:
            connection.execute("DELETE FROM room_members WHERE room_id = %s", (room_id,))
            if members:
                connection.execute(
                    "INSERT INTO room_members (room_id, user_id) SELECT %s, unnest(%s::text[])",
                    (room_id, members),
                )

    def is_member(self, room_id: str, user_id: str) -> bool:
        with self._db.connection() as connection:
            return (
                connection.execute(
                    "SELECT 1 FROM room_members m JOIN rooms r ON r.id = m.room_id "
                    "WHERE m.room_id = %s AND m.user_id = %s",
                    (room_id, user_id),
                ).fetchone()
                is not None
            )

    def member_rooms(
        self, user_id: str, room_type: str, offset: int = 0, count: int | None = None
    ) -> tuple[list[dict], int]:
        """The rooms of one type `user_id` is a member of, ordered as `rooms()`; `(page, total)`."""
        mine = (
            "FROM rooms JOIN room_members m ON m.room_id = rooms.id WHERE m.user_id = %s AND t = %s"
        )
        with self._db.connection() as connection:
            rows = connection.execute(
                f'SELECT doc {mine} ORDER BY sort_name, rooms.id COLLATE "C" OFFSET %s LIMIT %s',
                (user_id, room_type, max(offset, 0), count),
            ).fetchall()
            total = connection.execute(f"SELECT count(*) {mine}", (user_id, room_type)).fetchone()[
                0
            ]
        return [row[0] for row in rows], total

    def delete_room(self, room_id: str) -> None:
        with self._db.transaction() as connection:
            for table, column in (("rooms", "id"), ("room_members", "room_id")):
                connection.execute(f"DELETE FROM {table} WHERE {column} = %s", (room_id,))
            connection.execute("DELETE FROM messages WHERE room_id = %s", (room_id,))

    # --- messages: writing -----------------------------------------------------

    def upsert_messages(self, messages: Iterable[dict]) -> int:
        """Insert or replace messages by `_id`; returns how many were written."""
        unique: dict[tuple[str, str], dict] = {}
        for message in messages:
            if not isinstance(message.get("_sort"), int):
                raise ValueError(f"message {message.get('_id')!r} has no integer _sort")
            unique[(message["rid"], message["_id"])] = message
        if not unique:
            return 0
        with self._db.transaction() as connection, connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO messages (room_id, id, sort, doc, visible, main, pending_file_id) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (room_id, id) DO UPDATE SET "
                "sort = excluded.sort, doc = excluded.doc, visible = excluded.visible, "
                "main = excluded.main, pending_file_id = excluded.pending_file_id",
                [_message_row(m) for m in unique.values()],
            )
        return len(unique)

    def writer(self, per_room: int = 5000, in_total: int = 50_000) -> MessageWriter:
        """A buffer that groups messages by room and writes them in large batches."""
        return MessageWriter(self, per_room, in_total)

    # --- messages: reading -----------------------------------------------------

    def history(
        self,
        room_id: str,
        *,
        since: int | None = None,
        before: int | None = None,
        offset: int = 0,
        count: int = 20,
        thread_messages: bool = True,
        newest_first: bool = True,
    ) -> tuple[list[dict], int]:
        """Visible messages with `since <= _sort < before`, newest first unless
        `newest_first` is false (then `offset` counts from the oldest); `(page, total)`.

        `thread_messages=False` hides thread replies not broadcast to the room.
        """
        where = ["room_id = %s", "visible" if thread_messages else "main"]
        params: list[Any] = [room_id]
        if since is not None:
            where.append("sort >= %s")
            params.append(since)
        if before is not None:
            where.append("sort < %s")
            params.append(before)
        condition = " AND ".join(where)
        direction = "DESC" if newest_first else "ASC"
        with self._db.connection() as connection:
            rows = connection.execute(
                f"SELECT doc FROM messages WHERE {condition} "
                f'ORDER BY sort {direction}, id COLLATE "C" {direction} OFFSET %s LIMIT %s',
                (*params, max(offset, 0), max(count, 0)),
            ).fetchall()
            total = connection.execute(
                f"SELECT count(*) FROM messages WHERE {condition}", params
            ).fetchone()[0]
        return [row[0] for row in rows], total

    def message(self, message_id: str) -> dict | None:
        """The stored message with that `_id`, hidden or not."""
        with self._db.connection() as connection:
            row = connection.execute(
                'SELECT doc FROM messages WHERE id = %s ORDER BY room_id COLLATE "C" LIMIT 1',
                (message_id,),
            ).fetchone()
        return row[0] if row else None

    def thread_messages(self, room_id: str, thread_id: str) -> list[dict]:
        """The visible replies of a thread in a room, oldest first."""
        with self._db.connection() as connection:
            rows = connection.execute(
                "SELECT doc FROM messages WHERE room_id = %s AND tmid = %s AND visible "
                'ORDER BY sort, id COLLATE "C"',
                (room_id, thread_id),
            ).fetchall()
        return [row[0] for row in rows]

    def thread_roots(self, room_id: str) -> list[dict]:
        """The visible messages of a room that start a thread, oldest first."""
        with self._db.connection() as connection:
            rows = connection.execute(
                "SELECT doc FROM messages WHERE room_id = %s AND thread_root AND visible "
                'ORDER BY sort, id COLLATE "C"',
                (room_id,),
            ).fetchall()
        return [row[0] for row in rows]

    def message_count(self, room_id: str, *, visible_only: bool = True) -> int:
        condition = " AND visible" if visible_only else ""
        with self._db.connection() as connection:
            return connection.execute(
                f"SELECT count(*) FROM messages WHERE room_id = %s{condition}", (room_id,)
            ).fetchone()[0]

    def last_message(self, room_id: str) -> dict | None:
        """The newest message a room list shows as `lastMessage` (visible, not a thread reply)."""
        with self._db.connection() as connection:
            row = connection.execute(
                "SELECT doc FROM messages WHERE room_id = %s AND main "
                'ORDER BY sort DESC, id COLLATE "C" DESC LIMIT 1',
                (room_id,),
            ).fetchone()
        return row[0] if row else None

    def messages(self, room_id: str, *, pending_files_only: bool = False) -> Iterator[dict]:
        """Every stored message of a room, oldest first (hidden ones included).

        Reads a batch per round trip, going on after the last key seen, so messages
        written meanwhile after that key are read too.
        """
        pending = " AND pending_file_id IS NOT NULL" if pending_files_only else ""
        after: tuple[int, str] | None = None
        while True:
            with self._db.connection() as connection:
                if after is None:
                    rows = connection.execute(
                        f"SELECT sort, id, doc FROM messages WHERE room_id = %s{pending} "
                        'ORDER BY sort, id COLLATE "C" LIMIT %s',
                        (room_id, _WALK_BATCH),
                    ).fetchall()
                else:
                    rows = connection.execute(
                        f"SELECT sort, id, doc FROM messages WHERE room_id = %s{pending} "
                        'AND (sort, id COLLATE "C") > (%s, %s) '
                        'ORDER BY sort, id COLLATE "C" LIMIT %s',
                        (room_id, *after, _WALK_BATCH),
                    ).fetchall()
            if not rows:
                return
            for _, _, message in rows:
                yield message
            after = (rows[-1][0], rows[-1][1])

    # --- pending files (Rocket.Chat's pending-files importer) --------------------

    def pending_file_count(self) -> int:
        with self._db.connection() as connection:
            return connection.execute(
                "SELECT count(*) FROM messages WHERE pending_file_id IS NOT NULL"
            ).fetchone()[0]

    def pending_file_messages(self, room_id: str | None = None) -> Iterator[dict]:
        """Messages whose `_importFile` still waits for a download, room by room."""
        if room_id:
            rooms = [room_id]
        else:
            with self._db.connection() as connection:
                rooms = [
                    row[0]
                    for row in connection.execute(
                        'SELECT DISTINCT room_id COLLATE "C" FROM messages '
                        "WHERE pending_file_id IS NOT NULL ORDER BY 1"
                    )
                ]
        for rid in rooms:
            yield from self.messages(rid, pending_files_only=True)

    def mark_files_downloaded(self, downloads: Iterable[tuple[str, str, dict | None]]) -> int:
        """For each `(file_id, url, attachment)`: every pending message with that
        `_importFile.id` gets `rocketChatUrl=url`, `downloaded=True` and the attachment
        added (once). Returns how many messages changed."""
        wanted = {file_id: (url, attachment) for file_id, url, attachment in downloads if file_id}
        if not wanted:
            return 0
        with self._db.transaction() as connection:
            rows = connection.execute(
                "SELECT room_id, id, pending_file_id, doc FROM messages "
                "WHERE pending_file_id = ANY(%s) FOR UPDATE",
                (list(wanted),),
            ).fetchall()
            changed = []
            for _, _, file_id, message in rows:
                url, attachment = wanted[file_id]
                message["_importFile"].update({"rocketChatUrl": url, "downloaded": True})
                if attachment is not None:
                    attachments = message.setdefault("attachments", [])
                    if attachment not in attachments:
                        attachments.append(attachment)
                changed.append(_message_row(message))
            if changed:
                with connection.cursor() as cursor:
                    cursor.executemany(
                        "UPDATE messages SET sort = %s, doc = %s, visible = %s, main = %s, "
                        "pending_file_id = %s WHERE room_id = %s AND id = %s",
                        [(*row[2:], row[0], row[1]) for row in changed],
                    )
        return len(changed)

    # --- uploads: the files imported messages point at ---------------------------

    def save_upload(self, upload: dict) -> None:
        """Insert or replace an upload record, keyed by its `_id`."""
        with self._db.connection() as connection:
            connection.execute(
                "INSERT INTO uploads (id, doc) VALUES (%s, %s) "
                "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                (upload["_id"], document(upload)),
            )

    def upload(self, upload_id: str) -> dict | None:
        with self._db.connection() as connection:
            row = connection.execute(
                "SELECT doc FROM uploads WHERE id = %s", (upload_id,)
            ).fetchone()
        return row[0] if row else None

    def uploads(self) -> list[dict]:
        """Every upload record (moving an installation to another backend)."""
        with self._db.connection() as connection:
            return [row[0] for row in connection.execute("SELECT doc FROM uploads ORDER BY id")]

    # --- room statistics ---------------------------------------------------------

    def refresh_room_stats(self, room_ids: Iterable[str], now_iso: str) -> None:
        """Recompute `msgs`, `lastMessage` and `lm` of rooms after their messages changed."""
        changes = {}
        for rid in set(room_ids):
            last = self.last_message(rid)
            fields: dict[str, Any] = {"msgs": self.message_count(rid), "_updatedAt": now_iso}
            if last is not None:
                last.pop("_sort", None)
                fields["lastMessage"] = last
                fields["lm"] = last["ts"]
            changes[rid] = fields
        self.update_rooms(changes)
