"""Safe, streaming access to the zip exports every zip-based importer reads.

Rocket.Chat loads whole exports into memory and so fails on large workspaces. Here an
archive is opened by its central directory and each member is read as a bounded stream,
so memory does not grow with the export.

What counts as hostile, and what happens to it:
- a name that could escape a target folder (`..`, absolute, backslash, drive letter,
  NUL) or a symlink entry: skipped with a warning. Nothing here ever extracts to disk,
  but these names would also confuse the folder-based layout rules of the importers.
- a member whose declared size or compression ratio is absurd: skipped with a warning.
- a member that inflates beyond its limits while being read (its headers lied): the
  import fails with ImportFileError, because records from it may already be reported.
- more members than ArchiveLimits.max_members: the import fails before the central
  directory is loaded, so a directory of millions of entries cannot exhaust memory.
Nested archives are ordinary members; nothing opens them.
"""

from __future__ import annotations

import io
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ferry.chat.parsers.base import ArchiveLimits, ImportFileError

Warn = Callable[[str], None]

# Below this size a high ratio is normal (a few KB of repeated JSON keys) and harmless.
_RATIO_FLOOR_BYTES = 1024 * 1024
# The central directory needs roughly this much memory per entry once parsed.
_MAX_DIRECTORY_BYTES_PER_MEMBER = 1024
_NOISE_FOLDERS = {"__MACOSX"}
_NOISE_FILES = {".DS_Store", "Thumbs.db"}
_DRIVE = re.compile(r"^[A-Za-z]:")
# Stored, deflate, bzip2, lzma: what zipfile can inflate. Deflate64 (9) is the usual
# stranger, written by Windows Explorer for large files.
_READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


@dataclass(frozen=True)
class Member:
    """A readable file inside an archive."""

    path: str  # relative to the detected top folder, '/'-separated, never hostile
    name: str  # the entry name as stored, for messages to the admin
    size: int  # as declared; reading enforces it rather than trusting it
    compressed_size: int
    _info: zipfile.ZipInfo = field(repr=False, compare=False)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("/"))


class CappedWarnings:
    """Forwards warnings about one subject, then summarises the rest.

    A damaged file can produce one warning per row; the admin needs the first few and
    a count, not a million lines.
    """

    def __init__(self, warn: Warn, subject: str, cap: int = 20):
        self._warn = warn
        self._subject = subject
        self._cap = cap
        self.count = 0

    def __call__(self, message: str) -> None:
        self.count += 1
        if self.count <= self._cap:
            self._warn(message)

    def row(self, line: int, problem: str) -> None:
        self(f"{self._subject}:{line}: {problem}; row skipped.")

    def close(self) -> None:
        if self.count > self._cap:
            self._warn(f"{self._subject}: {self.count - self._cap} more problems like these")


def _unsafe_reason(name: str) -> str | None:
    if "\x00" in name:
        return "contains a NUL character"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    if ".." in name.split("/"):
        return "climbs out of the archive with '..'"
    return None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    # Unix tools keep the file mode in the high 16 bits of the external attributes.
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _declared_directory(fp: BinaryIO) -> tuple[int, int]:
    """(entry count, directory size) from the end records, before zipfile parses anything."""
    fp.seek(0, io.SEEK_END)
    length = fp.tell()
    tail_len = min(length, 22 + 65535)
    fp.seek(length - tail_len)
    tail = fp.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise zipfile.BadZipFile("no end of central directory record")
    count, size = struct.unpack("<HI", tail[at + 10 : at + 16])
    locator = at - 20
    if (
        (count == 0xFFFF or size == 0xFFFFFFFF)
        and locator >= 0
        and tail[locator : locator + 4] == b"PK\x06\x07"
    ):
        (record_at,) = struct.unpack("<Q", tail[locator + 8 : locator + 16])
        fp.seek(record_at)
        record = fp.read(56)
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            count, size = struct.unpack("<QQ", record[32:48])
    return count, size


class ZipArchive:
    """An open zip export. Use as a context manager; `members` lists the safe files."""

    def __init__(
        self,
        source: Path,
        limits: ArchiveLimits,
        warn: Warn,
        root_markers: Iterable[str] = (),
    ):
        self.source = Path(source)
        self.limits = limits
        self._warn = warn
        self._high_water: dict[str, int] = {}
        self._total = 0
        try:
            self._fp = open(self.source, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise ImportFileError(f"The import file cannot be opened: {exc.strerror}.") from exc
        try:
            self._zip = self._open_zip()
            self.members, self.top_folder = self._list({m.lower() for m in root_markers})
        except BaseException:
            self._fp.close()
            raise

    def _open_zip(self) -> zipfile.ZipFile:
        try:
            count, directory_size = _declared_directory(self._fp)
            if count > self.limits.max_members:
                raise ImportFileError(
                    f"The archive has {count} entries; "
                    f"at most {self.limits.max_members} are accepted."
                )
            if directory_size > self.limits.max_members * _MAX_DIRECTORY_BYTES_PER_MEMBER:
                raise ImportFileError("The archive's table of contents is implausibly large.")
            self._fp.seek(0)
            return zipfile.ZipFile(self._fp)
        except ImportFileError:
            raise
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            OSError,
            EOFError,
            ValueError,
            struct.error,
        ) as exc:
            raise ImportFileError(
                f"The import file is not a zip archive, or it is truncated or damaged ({exc})."
            ) from exc

    def _list(self, root_markers: set[str]) -> tuple[list[Member], str | None]:
        warn = CappedWarnings(self._warn, "Archive entries")
        kept: dict[str, zipfile.ZipInfo] = {}
        declared_total = 0
        for info in self._zip.infolist():
            name = info.filename
            if info.is_dir():
                continue
            parts = name.split("/")
            if _NOISE_FOLDERS.intersection(parts) or parts[-1] in _NOISE_FILES:
                continue
            problem = self._problem(info)
            if problem:
                warn(f"Skipped archive entry {name!r}: {problem}.")
                continue
            if name in kept:
                warn(f"Archive entry {name!r} appears twice; only the last copy is read.")
                declared_total -= kept[name].file_size
            kept[name] = info
            declared_total += info.file_size
        warn.close()
        if declared_total > self.limits.max_total_size:
            raise ImportFileError(
                f"The archive would expand to {declared_total} bytes; at most "
                f"{self.limits.max_total_size} are accepted."
            )
        top = _single_top_folder(list(kept), root_markers)
        cut = len(top) + 1 if top else 0
        members = [
            Member(name[cut:], name, info.file_size, info.compress_size, info)
            for name, info in kept.items()
        ]
        return members, top

    def _problem(self, info: zipfile.ZipInfo) -> str | None:
        """Why an entry must not be read, judged from its headers; None when it may."""
        # zipfile cuts a name at its first NUL (`users.csv\0.png` reads as `users.csv`);
        # the name as stored is judged.
        reason = _unsafe_reason(info.orig_filename)
        if reason:
            return f"its name {reason}"
        if _is_symlink(info):
            return "it is a symbolic link"
        if info.flag_bits & 0x1:
            return "it is encrypted"
        if info.compress_type not in _READABLE_METHODS:
            return (
                f"compression method {info.compress_type} is not supported; "
                "re-create the zip with standard (deflate) compression"
            )
        if info.file_size > self.limits.max_member_size:
            return (
                f"{info.file_size} bytes is more than the {self.limits.max_member_size} "
                "allowed for one file"
            )
        if self._ratio_exceeded(info.file_size, info.compress_size):
            return (
                f"{info.compress_size} bytes expand to {info.file_size}, "
                "which looks like a compression bomb"
            )
        return None

    def _ratio_exceeded(self, produced: int, compressed: int) -> bool:
        if produced <= _RATIO_FLOOR_BYTES:
            return False
        return produced > max(compressed, 1) * self.limits.max_compression_ratio

    def open(self, member: Member) -> io.BufferedReader:
        """A bounded binary stream of the member's bytes (supports `peek`)."""
        try:
            raw = self._zip.open(member._info)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise ImportFileError(f"{member.name} in the archive cannot be read ({exc}).") from exc
        return io.BufferedReader(_BoundedMember(raw, member, self), buffer_size=64 * 1024)

    def _account(self, member: Member, produced: int) -> None:
        limits = self.limits
        if produced > limits.max_member_size:
            raise ImportFileError(
                f"{member.name} in the archive expands beyond {limits.max_member_size} bytes."
            )
        if self._ratio_exceeded(produced, member.compressed_size):
            raise ImportFileError(
                f"{member.name} in the archive expands far beyond what its compressed size "
                "allows; the archive looks like a compression bomb."
            )
        previous = self._high_water.get(member.name, 0)
        if produced > previous:
            self._high_water[member.name] = produced
            # Counted once per member, so importers may read a member twice.
            self._total += produced - previous
            if self._total > limits.max_total_size:
                raise ImportFileError(
                    f"The archive expands beyond {limits.max_total_size} bytes in total."
                )

    def close(self) -> None:
        self._zip.close()
        self._fp.close()

    def __enter__(self) -> ZipArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _single_top_folder(names: list[str], root_markers: set[str]) -> str | None:
    """The one folder that holds everything, when the export was zipped with its folder.

    With markers, the folder counts only if a marker (a file or folder the format puts
    at its root) sits directly inside it; that keeps a lone channel folder from being
    mistaken for a wrapper.
    """
    if not names:
        return None
    firsts = {name.split("/", 1)[0] for name in names}
    if len(firsts) != 1 or any("/" not in name for name in names):
        return None
    top = firsts.pop()
    if not root_markers:
        return top
    seconds = {name.split("/")[1].lower() for name in names}
    return top if seconds & root_markers else None


class _BoundedMember(io.RawIOBase):
    """Counts what a member really inflates to and stops it at the limits."""

    def __init__(self, raw: BinaryIO, member: Member, archive: ZipArchive):
        self._raw = raw
        self._member = member
        self._archive = archive
        self._produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        try:
            n = self._raw.readinto(buffer)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            raise ImportFileError(
                f"{self._member.name} in the archive is damaged or truncated ({exc})."
            ) from exc
        self._produced += n
        self._archive._account(self._member, self._produced)
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def open_zip(
    source: Path, limits: ArchiveLimits, warn: Warn, root_markers: Iterable[str] = ()
) -> ZipArchive:
    return ZipArchive(source, limits, warn, root_markers)


def report_progress(
    options_progress: Callable[[float], None] | None, done: int, total: int
) -> None:
    if options_progress is not None and total > 0:
        options_progress(min(100.0, 100.0 * done / total))
