"""Reading whole parts of the tree: a folder as a streamed zip, name search, file hashes.

All three walk only what listings show: hidden names (part files among them) are
skipped, symlinks are never followed, and nothing outside the root is read.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ferry.files import Entry
from ferry.kernel.statuses import EntryType

CHUNK = 256 * 1024
SEARCH_MAX_SECONDS = 5.0
SEARCH_MAX_VISITED = 200_000
HASHES_KEPT = 4096


def _visible_walk(directory: Path) -> Iterator[tuple[str, os.DirEntry, os.stat_result]]:
    """(path relative to `directory`, entry, lstat) for every visible entry below it,
    depth first; symlinks are neither followed nor yielded."""
    pending = [("", directory)]
    while pending:
        prefix, current = pending.pop()
        try:
            with os.scandir(current) as scan:
                items = sorted(scan, key=lambda item: item.name)
        except OSError:
            continue  # removed, or unreadable, while walking
        for item in items:
            if item.name.startswith("."):
                continue
            try:
                info = item.stat(follow_symlinks=False)
            except OSError:
                continue
            relative = f"{prefix}{item.name}"
            if stat.S_ISDIR(info.st_mode):
                yield relative, item, info
                pending.append((relative + "/", Path(item.path)))
            elif stat.S_ISREG(info.st_mode):
                yield relative, item, info


class _Sink:
    """A write-only stream the zip writer fills and the response drains."""

    def __init__(self):
        self.buffer = bytearray()

    def write(self, data) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def zip_stream(directory: Path) -> Iterator[bytes]:
    """The visible files below `directory` as a zip, produced a chunk at a time (ZIP64
    data descriptors, so nothing is seeked and memory stays at a chunk or two). A file
    removed while streaming is left out."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for relative, item, info in _visible_walk(directory):
            if stat.S_ISDIR(info.st_mode):
                archive.writestr(zipfile.ZipInfo(relative + "/", _zip_time(info)), b"")
                continue
            try:
                source = open(item.path, "rb")  # noqa: SIM115 - closed below
            except OSError:
                continue
            with source:
                member = zipfile.ZipInfo(relative, _zip_time(info))
                with archive.open(member, "w", force_zip64=True) as target:
                    while chunk := source.read(CHUNK):
                        target.write(chunk)
                        yield sink.drain()
            yield sink.drain()
    yield sink.drain()


def _zip_time(info: os.stat_result) -> tuple:
    stamp = time.localtime(max(info.st_mtime, 315532800))  # zip cannot hold dates before 1980
    return stamp[:6]


@dataclass(frozen=True)
class SearchPage:
    entries: list[Entry]
    # Matches follow this page.
    more: bool
    # The walk stopped at SEARCH_MAX_VISITED entries or SEARCH_MAX_SECONDS.
    truncated: bool


def search(directory: Path, query: str, offset: int, limit: int) -> SearchPage:
    """The matches `offset` to `offset + limit` among the entries below `directory`
    whose names contain `query` (case-insensitive), as paths relative to it, in the
    walk's fixed order; the walk stops at the first match past the page, or at its
    bounds (SEARCH_MAX_VISITED entries, SEARCH_MAX_SECONDS)."""
    needle = query.casefold()
    found: list[Entry] = []
    matched = 0
    deadline = time.monotonic() + SEARCH_MAX_SECONDS
    for visited, (relative, item, info) in enumerate(_visible_walk(directory)):
        if visited >= SEARCH_MAX_VISITED or time.monotonic() > deadline:
            return SearchPage(found, more=False, truncated=True)
        if needle not in item.name.casefold():
            continue
        matched += 1
        if matched <= offset:
            continue
        if len(found) == limit:
            return SearchPage(found, more=True, truncated=False)
        is_directory = stat.S_ISDIR(info.st_mode)
        kind = EntryType.DIRECTORY if is_directory else EntryType.FILE
        size = 0 if is_directory else info.st_size
        found.append(Entry(relative, kind, size, int(info.st_mtime)))
    return SearchPage(found, more=False, truncated=False)


class FileHashes:
    """SHA-256 of files, kept while the file's size and modification time stay the same."""

    def __init__(self):
        self._known: OrderedDict[tuple, str] = OrderedDict()
        self._lock = threading.Lock()

    def sha256(self, path: Path) -> str:
        info = os.stat(path)
        key = (os.path.realpath(path), info.st_size, info.st_mtime_ns, info.st_ino)
        with self._lock:
            if key in self._known:
                self._known.move_to_end(key)
                return self._known[key]
        digest = hashlib.sha256()
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
        value = digest.hexdigest()
        with self._lock:
            self._known[key] = value
            while len(self._known) > HASHES_KEPT:
                self._known.popitem(last=False)
        return value
