"""The files imported messages point at (Rocket.Chat's uploads), and who may fetch them.

downloadPendingFiles stores each file as `<uploads dir>/<upload id>/<name>` under the
state directory, outside the served file tree, and records which rooms' messages point
at it. `GET /file-upload/<upload id>/<name>` (Rocket.Chat's path) hands the file to a
caller who may read one of those rooms (see `WorkspaceQueries.may_read`); for anyone
else it does not exist.

Data directories written by earlier versions hold these files in the served tree, under
`files/uploads/<file id>/<name>`, with messages pointing at `/uploads/...`.
`move_legacy_uploads`, a start-up step, moves them here once, records their rooms and
points their messages at the route.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mimetypes
import os
import re
import shutil
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

from ferry.chat.image_size import image_dimensions
from ferry.chat.reads import ROOM_ADMINISTRATION, Reader, WorkspaceQueries
from ferry.kernel.errors import NotFound
from ferry.kernel.ids import now_iso, random_id
from storage.workspace import WorkspaceStore

log = logging.getLogger("ferry.chat")

FILE_UPLOAD_ROUTE = "file-upload"
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# The served-tree folder earlier versions stored pending files in, and its URL prefix.
LEGACY_FOLDER = "uploads"
# Written once the served tree's uploads have been moved (or there were none), so that a
# folder of that name made later is the user's own and never touched.
_LEGACY_MOVED = ".served-tree-uploads-moved"
_MESSAGE_BATCH = 1000
NOT_FOUND = "File not found"


def upload_url(upload_id: str, name: str) -> str:
    """The route's URL for a file, as Rocket.Chat's FileUpload.getPath builds it."""
    return f"/{FILE_UPLOAD_ROUTE}/{upload_id}/{quote(name)}"


def message_attachment(
    name: str,
    url: str,
    content_type: str | None,
    size: int | None,
    dimensions: dict | None = None,
) -> dict:
    """The attachment Rocket.Chat puts on a file's message (`type: file`), with the image's
    `image_dimensions` when they are known."""
    attachment: dict = {"type": "file", "title": name, "title_link": url}
    kind = (content_type or "").partition("/")[0]
    if kind in ("image", "audio", "video"):
        attachment[f"{kind}_url"] = url
        attachment[f"{kind}_type"] = content_type
        if size is not None:
            attachment[f"{kind}_size"] = size
    if kind == "image" and dimensions is not None:
        attachment["image_dimensions"] = dimensions
    return attachment


def content_type_of(name: str) -> str | None:
    return mimetypes.guess_type(name)[0]


def legacy_upload_id(relative: str) -> str:
    """The upload id of `files/uploads/<relative>`: derived from the path, so that moving
    the same file again after a crash finds the same record."""
    return "legacy-" + hashlib.sha256(relative.encode()).hexdigest()[:24]


def _legacy_folder_of(file_id: str) -> str:
    # How earlier versions named a file's folder: its id reduced to a safe name.
    return "".join(ch for ch in file_id if ch.isalnum() or ch in "-_")[:64]


class Attachments:
    def __init__(
        self,
        queries: WorkspaceQueries,
        workspace: WorkspaceStore,
        directory: Path,
        legacy_directory: Path,
    ):
        self._queries = queries
        self._workspace = workspace
        self._directory = directory
        self._legacy_directory = legacy_directory

    # --- storing ---------------------------------------------------------------------

    def new_upload(self) -> tuple[str, Path, str]:
        """A fresh upload id, the directory its file goes into, and that directory's name
        as download records show it."""
        upload_id = random_id()
        directory = self._directory / upload_id
        directory.mkdir(parents=True, exist_ok=True)
        return upload_id, directory, f"{FILE_UPLOAD_ROUTE}/{upload_id}"

    def publish(
        self, upload_id: str, name: str, room_ids: set[str], size: int | None
    ) -> tuple[str, dict]:
        """Records the stored file for its rooms; returns its URL and message attachment.

        The record is written before any message points at the URL, so a link never
        leads nowhere.
        """
        content_type = content_type_of(name)
        self._workspace.save_upload(
            {
                "_id": upload_id,
                "name": name,
                "rooms": sorted(room_ids),
                "type": content_type,
                "size": size,
                "uploadedAt": now_iso(),
            }
        )
        url = upload_url(upload_id, name)
        dimensions = None
        if (content_type or "").startswith("image/"):
            dimensions = image_dimensions(self._directory / upload_id / name)
        return url, message_attachment(name, url, content_type, size, dimensions)

    def discard(self, upload_id: str) -> None:
        shutil.rmtree(self._directory / upload_id, ignore_errors=True)

    # --- serving ---------------------------------------------------------------------

    def file_for(self, reader: Reader, upload_id: str) -> Path:
        """The stored file of `upload_id`, if `reader` may read one of its rooms.

        Raises:
            NotFound: no such upload, or one `reader` may not see (the same answer).
        """
        upload = self._workspace.upload(upload_id) if _UPLOAD_ID.match(upload_id) else None
        if upload is None or not self._may_fetch(reader, upload):
            raise NotFound(NOT_FOUND)
        name = upload.get("name") or ""
        path = self._directory / upload_id / name
        if Path(name).name != name or name.startswith(".") or path.is_symlink():
            raise NotFound(NOT_FOUND)
        if not path.is_file():
            raise NotFound(NOT_FOUND)
        return path

    def _may_fetch(self, reader: Reader, upload: dict) -> bool:
        if ROOM_ADMINISTRATION in reader.permissions:
            return True
        for room_id in upload.get("rooms") or []:
            room = self._workspace.room(room_id)
            if room is not None and self._queries.may_read(room, reader):
                return True
        return False

    # --- files earlier versions left in the served tree -----------------------------

    def move_legacy_uploads(self) -> int:
        """Moves `files/uploads/` out of the served tree; returns how many files moved.

        Runs once per data directory. Safe to repeat after a crash: ids are derived from
        the old paths, records are replaced, and files already moved are left alone.
        """
        marker = self._directory / _LEGACY_MOVED
        if marker.exists():
            return 0
        self._directory.mkdir(parents=True, exist_ok=True)
        moved = 0
        if self._legacy_directory.is_dir():
            moved = self._move_legacy_tree()
            log.info("moved %d imported files out of the served tree", moved)
        marker.touch()
        return moved

    def _move_legacy_tree(self) -> int:
        rooms_of: dict[str, set[str]] = defaultdict(set)
        rewrites: dict[str, list[dict]] = defaultdict(list)
        for room in self._workspace.rooms(None)[0]:
            for message in self._workspace.messages(room["_id"]):
                relative = self._legacy_relative_path(message)
                if relative is None:
                    continue
                rooms_of[relative].add(message["rid"])
                rewrites[message["rid"]].append(message)
        moved = 0
        for folder in sorted(p for p in self._legacy_directory.iterdir() if p.is_dir()):
            for path in sorted(p for p in folder.iterdir() if p.is_file()):
                relative = f"{folder.name}/{path.name}"
                self._move_legacy_file(path, relative, rooms_of.get(relative, set()))
                moved += 1
        for messages in rewrites.values():
            for start in range(0, len(messages), _MESSAGE_BATCH):
                batch = messages[start : start + _MESSAGE_BATCH]
                self._workspace.upsert_messages([self._pointed_at_route(m) for m in batch])
        if rewrites:
            self._workspace.refresh_room_stats(rewrites, now_iso())
        for folder in self._legacy_directory.iterdir():
            with contextlib.suppress(OSError):
                folder.rmdir()  # only empty ones: anything else is not ours
        with contextlib.suppress(OSError):
            self._legacy_directory.rmdir()
        return moved

    @staticmethod
    def _legacy_url_parts(url: object) -> tuple[str, str] | None:
        prefix = f"/{LEGACY_FOLDER}/"
        if not isinstance(url, str) or not url.startswith(prefix):
            return None
        file_id, _, name = url[len(prefix) :].partition("/")
        return (file_id, name) if file_id and name else None

    def _legacy_relative_path(self, message: dict) -> str | None:
        imported = message.get("_importFile")
        parts = self._legacy_url_parts(imported.get("rocketChatUrl")) if imported else None
        if parts is None:
            return None
        return f"{_legacy_folder_of(parts[0])}/{parts[1]}"

    def _move_legacy_file(self, path: Path, relative: str, room_ids: set[str]) -> None:
        # A file no message points at keeps no room: only room administrators fetch it.
        upload_id = legacy_upload_id(relative)
        target = self._directory / upload_id / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        self.publish(upload_id, path.name, room_ids, path.stat().st_size)
        os.replace(path, target)

    def _pointed_at_route(self, message: dict) -> dict:
        imported = message["_importFile"]
        old_url = imported["rocketChatUrl"]
        relative = self._legacy_relative_path(message)
        name = relative.partition("/")[2] if relative else ""
        new_url = upload_url(legacy_upload_id(relative or ""), name)
        imported["rocketChatUrl"] = new_url
        for attachment in message.get("attachments") or []:
            if not isinstance(attachment, dict):
                continue
            for key in ("title_link", "image_url", "audio_url", "video_url"):
                if attachment.get(key) == old_url:
                    attachment[key] = new_url
        return message
