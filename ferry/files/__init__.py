"""The served file tree: turning user-supplied paths into paths that stay inside the root."""

from __future__ import annotations

import contextlib
import os
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ferry.kernel.errors import InvalidInput, NotFound
from ferry.kernel.statuses import EntryType

# Names under these top-level folders belong to the API (and to the imported files'
# route), never to the file tree.
RESERVED_PREFIXES = ("api", "file-upload")
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255


@dataclass(frozen=True)
class Entry:
    name: str
    type: str
    size: int
    modified: int

    def as_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "size": self.size, "modified": self.modified}


def split_relative(raw: str) -> list[str]:
    """The segments of a user-supplied relative path, or InvalidInput if any is unsafe.

    Refused: NUL and control characters, backslashes (a Windows separator that would
    mean something else to other clients), absolute paths, `.` and `..` segments and
    over-long names. Empty segments (`a//b`, a trailing slash) are ignored.
    """
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidInput("The path is too long.")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in raw):
        raise InvalidInput("The path contains control characters.")
    if "\\" in raw:
        raise InvalidInput("The path contains a backslash.")
    if raw.startswith("/"):
        raise InvalidInput("The path must be relative to the file root.")
    segments = [segment for segment in raw.split("/") if segment]
    for segment in segments:
        if segment in (".", ".."):
            raise InvalidInput("The path must not contain '.' or '..' segments.")
        if len(segment.encode("utf-8")) > MAX_NAME_BYTES:
            raise InvalidInput("A name in the path is longer than 255 bytes.")
    return segments


class FileTree:
    """Everything below `root`; nothing outside it is ever read or written."""

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._real_root = Path(os.path.realpath(root))

    def _contained(self, candidate: Path) -> Path:
        real = Path(os.path.realpath(candidate))
        if real != self._real_root and not real.is_relative_to(self._real_root):
            # A symlink that leaves the root is treated as if it were not there.
            raise NotFound("No such file or directory.")
        return real

    def resolve(self, raw: str) -> Path:
        """The real path for `raw`, which must exist inside the root.

        Raises:
            InvalidInput: the path is unsafe.
            NotFound: it does not exist, is hidden, reserved, or leaves the root.
        """
        segments = split_relative(raw)
        if segments and segments[0] in RESERVED_PREFIXES:
            raise NotFound("No such file or directory.")
        if any(segment.startswith(".") for segment in segments):
            raise NotFound("No such file or directory.")
        real = self._contained(self.root.joinpath(*segments))
        if not real.exists():
            raise NotFound("No such file or directory.")
        return real

    def directory_for_writing(self, raw: str) -> tuple[Path, str]:
        """Creates (if needed) and returns the directory `raw` plus its display path.

        Raises:
            InvalidInput: the path is unsafe, reserved, or names a file.
            NotFound: a symlink on the way leaves the root.
        """
        segments = split_relative(raw)
        if segments and segments[0] in RESERVED_PREFIXES:
            raise InvalidInput(f"Paths under /{segments[0]}/ are reserved.")
        if any(segment.startswith(".") for segment in segments):
            raise InvalidInput("Hidden directories cannot be written to.")
        current = self._real_root
        for segment in segments:
            candidate = current / segment
            with contextlib.suppress(FileExistsError):
                os.mkdir(candidate)
            current = self._contained(candidate)
            if not current.is_dir():
                raise InvalidInput(f"'{segment}' is a file, not a directory.")
        return current, "/".join(segments)

    def display_path(self, real: Path) -> str:
        return real.relative_to(self._real_root).as_posix() if real != self._real_root else ""

    def listing(self, directory: Path, sort: str = "name", order: str = "asc") -> list[Entry]:
        """Directories first, then files, each group by `sort` (`name`, `mtime` or `size`,
        ties by name) in `order` (`asc` or `desc`); hidden names left out."""
        entries: list[Entry] = []
        with os.scandir(directory) as scan:
            for item in scan:
                if item.name.startswith("."):
                    continue
                try:
                    info = item.stat()
                except OSError:
                    continue  # a dangling symlink or a file removed while listing
                if stat.S_ISDIR(info.st_mode):
                    kind, size = EntryType.DIRECTORY, 0
                elif stat.S_ISREG(info.st_mode):
                    kind, size = EntryType.FILE, info.st_size
                else:
                    continue
                if item.is_symlink():
                    try:
                        self._contained(Path(item.path))
                    except NotFound:
                        continue
                entries.append(Entry(item.name, kind, size, int(info.st_mtime)))
        keys = {"name": lambda e: e.name, "mtime": lambda e: e.modified, "size": lambda e: e.size}
        key = keys[sort]
        entries.sort(key=lambda e: e.name, reverse=order == "desc")
        entries.sort(key=key, reverse=order == "desc")
        entries.sort(key=lambda e: e.type != EntryType.DIRECTORY)
        return entries
