"""Changing the file tree: uploads, new folders, deletions and moves.

Every change starts from a user-supplied path checked by `split_relative`, works on
real paths inside the root only, and never follows a symlink at the last segment (a
link is removed or moved as itself, never its target). An upload is written to a hidden
part file next to its destination, flushed to disk, then published in one step, so a
reader sees either no file or the whole file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from ferry.files import RESERVED_PREFIXES, FileTree, split_relative
from ferry.kernel.durable import fsync_directory
from ferry.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound

# Hidden (a leading dot) so listings, downloads of the tree and moves never show it.
PART_PREFIX = ".ferry-upload-"


def part_name(name: str) -> str:
    """The hidden name an upload of `name` is written under; fixed length whatever the
    name, so a 255-byte name still has a valid part file."""
    return PART_PREFIX + hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]


class Upload:
    """One PUT's bytes on their way to `destination`; `write`, then `publish` or `abort`."""

    def __init__(self, destination: Path, overwrite: bool, limit: int):
        self.destination = destination
        self.overwrite = overwrite
        self.limit = limit
        self.size = 0
        self.part = destination.parent / f"{part_name(destination.name)}-{secrets.token_hex(6)}"
        self._file = open(self.part, "xb")  # noqa: SIM115 - closed by publish or abort
        # Held while the upload writes: the sweep of abandoned parts leaves it alone.
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)

    @classmethod
    def resumed(cls, destination: Path, overwrite: bool, total: int) -> Upload:
        """Appends to the upload of `destination` an earlier request began (or begins
        it): its part file has a fixed name and keeps what arrived until `total` bytes
        are there.

        Raises:
            Conflict: another request is appending to it right now.
            InvalidInput: the part already holds more than `total` bytes.
        """
        upload = cls.__new__(cls)
        upload.destination, upload.overwrite, upload.limit = destination, overwrite, total
        upload.part = destination.parent / part_name(destination.name)
        upload._file = _locked_for_append(upload.part)
        upload.size = upload._file.tell()
        if upload.size > total:
            upload._file.close()
            raise InvalidInput(f"The upload already holds {upload.size} bytes, over {total}.")
        return upload

    @property
    def complete(self) -> bool:
        return self.size == self.limit

    def pause(self) -> None:
        """Keeps what arrived, on disk, for the next append."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def write(self, chunk: bytes) -> None:
        """Raises OverflowError once more than `limit` bytes were written."""
        self.size += len(chunk)
        if self.size > self.limit:
            raise OverflowError(self.limit)
        self._file.write(chunk)

    def publish(self) -> bool:
        """Puts the file in place; True when it replaced an existing one.

        Raises:
            Conflict: the name is taken (by a directory, or by a file without overwrite).
        """
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        try:
            replaced = _publish(self.part, self.destination, self.overwrite)
        except BaseException:
            self.abort()
            raise
        fsync_directory(self.destination.parent)
        return replaced

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.part)


def _locked_for_append(part: Path):
    """`part` opened for appending under an exclusive lock, which tells the sweep of
    abandoned parts, and any other append, that it is being written.

    Raises:
        Conflict: another request holds the lock.
    """
    while True:
        file = open(part, "ab")  # noqa: SIM115 - the caller closes it
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            raise Conflict("Another request is appending to this upload.") from None
        held, named = os.fstat(file.fileno()), _stat_or_none(part)
        if named is not None and (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
            return file
        # The sweep removed the old part between the open and the lock: open it anew.
        file.close()


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _publish(part: Path, destination: Path, overwrite: bool) -> bool:
    if os.path.isdir(destination) and not os.path.islink(destination):
        raise Conflict(f"'{destination.name}' is a directory.")
    if overwrite:
        existed = os.path.lexists(destination)
        os.replace(part, destination)
        return existed
    try:
        # A hard link publishes only if the name is free, with no window between the
        # check and the write: a download finishing under the same name cannot be lost.
        os.link(part, destination)
    except FileExistsError:
        raise Conflict(
            f"'{destination.name}' already exists; add ?overwrite=true to replace it."
        ) from None
    except OSError:
        if os.path.lexists(destination):
            raise Conflict(f"'{destination.name}' already exists.") from None
        os.rename(part, destination)
        return False
    os.unlink(part)
    return False


class FileEdits:
    """The changes users make to a `FileTree`.

    `busy_directories` answers the display paths of directories that active downloads
    write into; they cannot be deleted or moved away while the downloads run.
    """

    def __init__(self, tree: FileTree, busy_directories: Callable[[], list[str]]):
        self.tree = tree
        self.busy_directories = busy_directories

    def _writable_segments(self, raw: str) -> list[str]:
        segments = split_relative(raw)
        if not segments:
            raise Forbidden("The root of the file tree cannot be changed.")
        if segments[0] in RESERVED_PREFIXES:
            raise InvalidInput(f"Paths under /{segments[0]}/ are reserved.")
        if any(segment.startswith(".") for segment in segments):
            raise InvalidInput("Names starting with '.' are hidden and cannot be written.")
        return segments

    def destination(self, raw: str) -> Path:
        """The path a new entry `raw` goes to, its parents created (inside the root)."""
        segments = self._writable_segments(raw)
        parent, _ = self.tree.directory_for_writing("/".join(segments[:-1]))
        return parent / segments[-1]

    def existing(self, raw: str) -> Path:
        """The entry `raw` as itself (a symlink is not followed), which must exist.

        Raises:
            Forbidden: `raw` is the root.
            NotFound: it does not exist, or is hidden or reserved.
        """
        segments = split_relative(raw)
        if not segments:
            raise Forbidden("The root of the file tree cannot be changed.")
        parent = self.tree.resolve("/".join(segments[:-1]))
        if segments[0] in RESERVED_PREFIXES or segments[-1].startswith("."):
            raise NotFound("No such file or directory.")
        entry = parent / segments[-1]
        if not parent.is_dir() or not os.path.lexists(entry):
            raise NotFound("No such file or directory.")
        return entry

    def _upload_destination(self, raw: str, overwrite: bool) -> Path:
        """Raises Conflict at once when the name is a directory, or is taken and
        `overwrite` is off."""
        destination = self.destination(raw)
        if os.path.isdir(destination) and not os.path.islink(destination):
            raise Conflict(f"'{destination.name}' is a directory.")
        if not overwrite and os.path.lexists(destination):
            raise Conflict(
                f"'{destination.name}' already exists; add ?overwrite=true to replace it."
            )
        return destination

    def begin_upload(self, raw: str, *, overwrite: bool, limit: int) -> Upload:
        return Upload(self._upload_destination(raw, overwrite), overwrite, limit)

    def resume_upload(self, raw: str, *, overwrite: bool, total: int) -> Upload:
        """The upload of `raw` that appends to its part file until `total` bytes."""
        return Upload.resumed(self._upload_destination(raw, overwrite), overwrite, total)

    def cancel_upload(self, raw: str) -> bool:
        """Removes what the resumable upload of `raw` holds; False when it held nothing.

        Raises:
            Conflict: another request is appending to it right now.
        """
        if self.uploaded_so_far(raw) is None:
            return False
        upload = Upload.resumed(self._upload_destination(raw, True), True, sys.maxsize)
        upload.abort()
        return True

    def uploaded_so_far(self, raw: str) -> int | None:
        """Bytes the resumable upload of `raw` holds, or None when there is none."""
        try:
            segments = self._writable_segments(raw)
            parent = self.tree.resolve("/".join(segments[:-1]))
        except (InvalidInput, NotFound, Forbidden):
            return None
        try:
            return os.stat(parent / part_name(segments[-1])).st_size
        except OSError:
            return None

    def make_directory(self, raw: str) -> str:
        """Creates the directory `raw` and its parents; its display path.

        Raises:
            Conflict: it exists already.
        """
        destination = self.destination(raw)
        if os.path.lexists(destination):
            raise Conflict(f"'{destination.name}' already exists.")
        _, shown = self.tree.directory_for_writing(raw)
        return shown

    def _shown(self, entry: Path) -> str:
        """The display path of `entry` itself (not of what a symlink points at)."""
        return "/".join(filter(None, (self.tree.display_path(entry.parent), entry.name)))

    def _refuse_busy(self, entry: Path) -> None:
        shown = self._shown(entry)
        for directory in self.busy_directories():
            if directory == shown or directory.startswith(shown + "/"):
                raise Conflict(f"A download is writing into '{shown}'; cancel it first.")

    def delete(self, raw: str, *, recursive: bool) -> str:
        """Removes the file, link or directory `raw` (a non-empty one only if `recursive`).

        Raises:
            Conflict: a non-empty directory without `recursive`, or one a download uses.
        """
        entry = self.existing(raw)
        shown = self._shown(entry)
        if os.path.islink(entry) or not entry.is_dir():
            os.unlink(entry)
            return shown
        self._refuse_busy(entry)
        if recursive:
            shutil.rmtree(entry)
        else:
            try:
                os.rmdir(entry)
            except OSError:
                raise Conflict(
                    f"'{entry.name}' is not empty; add ?recursive=true to delete it."
                ) from None
        fsync_directory(entry.parent)
        return shown

    def move(self, raw_source: str, raw_destination: str, *, overwrite: bool) -> str:
        """Renames `raw_source` to `raw_destination` (parents created); its new path.

        Raises:
            Conflict: the destination exists without `overwrite`, a download uses the
                source, or a directory would move into itself.
        """
        source = self.existing(raw_source)
        source_shown = self._shown(source)
        target_shown = "/".join(self._writable_segments(raw_destination))
        if target_shown == source_shown:
            raise Conflict("The source and the destination are the same.")
        moves_directory = source.is_dir() and not source.is_symlink()
        if moves_directory:
            if target_shown.startswith(source_shown + "/"):
                raise Conflict("A directory cannot move into itself.")
            self._refuse_busy(source)
        destination = self.destination(raw_destination)
        if moves_directory and Path(os.path.realpath(destination.parent)).is_relative_to(
            os.path.realpath(source)
        ):
            raise Conflict("A directory cannot move into itself.")
        if os.path.lexists(destination):
            if not overwrite:
                raise Conflict(
                    f"'{destination.name}' already exists; send Overwrite: T to replace it."
                )
            if destination.is_dir() and not destination.is_symlink():
                self._refuse_busy(destination)
                shutil.rmtree(destination)
            else:
                os.unlink(destination)
        os.rename(source, destination)
        fsync_directory(destination.parent)
        return self._shown(destination)
