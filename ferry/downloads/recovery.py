"""What a crash left behind: the part file a download can go on from, and deleting the
part files of the downloads that cannot."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from ferry.downloads.fetch_types import PartialFile, Resumable
from ferry.kernel.statuses import DownloadKind
from storage.downloads import LOCAL_KEY

_PART_NAME = re.compile(r"\..*\.[0-9a-f]+\.part")


def _valid_timeout(timeout: object) -> bool:
    if timeout is None:
        return True
    return isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0


def partial_file(record: dict) -> PartialFile | None:
    """The part file a file download left, if the download can go on from it."""
    local = record.get(LOCAL_KEY) or {}
    resumable = Resumable.from_dict(local.get("resume"))
    directory, part_path, tag = local.get("directory"), local.get("part_path"), local.get("tag")
    if (
        record.get("kind", DownloadKind.FILE) != DownloadKind.FILE
        or resumable is None
        or not (directory and part_path and tag)
        or not isinstance(local.get("requested_name"), str | None)
        or not _valid_timeout(local.get("timeout"))
    ):
        return None
    path = Path(part_path)
    if (
        # The directory was a real path when the download started; a symlink put on
        # the way since could lead anywhere.
        os.path.realpath(directory) != directory
        or path.parent != Path(directory)
        or not _PART_NAME.fullmatch(path.name)
        or not path.name.endswith(f".{tag}.part")
        or path.is_symlink()
        or not path.is_file()
    ):
        return None
    return PartialFile(path, record["filename"], resumable)


def remove_leftovers(local: dict) -> None:
    """Delete a crashed download's part file: the recorded one, else one with its tag."""
    directory = local.get("directory")
    tag = local.get("tag")
    if not directory:
        return
    directory = Path(directory)
    candidates = []
    if local.get("part_path"):
        candidates.append(Path(local["part_path"]))
    if tag:
        # The part file may exist without being recorded if the crash came between
        # creating it and saving the record.
        candidates.extend(directory.glob(f".*.{tag}.part"))
    for path in candidates:
        # Only ever a part file directly in the recorded directory.
        if path.parent != directory or not _PART_NAME.fullmatch(path.name):
            continue
        if tag and not path.name.endswith(f".{tag}.part"):
            continue
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            if not path.is_symlink():
                path.unlink()
