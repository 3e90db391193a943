"""Safe, streaming access to the zip exports every zip-based importer reads.

Rocket.Chat loads whole exports into memory (AdmZip) and so fails on large workspaces
(rocketchat-import.md §9 items 1-2). Here an archive is opened by its central directory
and each member is read as a bounded stream, so memory does not grow with the export.

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

import codecs
import io
import re
import stat
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import ijson
import orjson

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
# JSON arrays up to this size are parsed in one go (their items all held at once,
# a few times this in memory); larger ones are streamed item by item.
_WHOLE_ARRAY_BYTES = 256 * 1024
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


# --- text -----------------------------------------------------------------------------

_fallback_state = threading.local()


def _legacy_byte(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)  # the five bytes cp1252 leaves undefined mean the same in Latin-1


def _windows_1252_fallback(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    _fallback_state.count = getattr(_fallback_state, "count", 0) + len(bad)
    return "".join(_legacy_byte(b) for b in bad), error.end


codecs.register_error("ferry.windows-1252", _windows_1252_fallback)


def _decoder_for(head: bytes):
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return codecs.getincrementaldecoder("utf-16")(errors="replace")
    return codecs.getincrementaldecoder("utf-8-sig")(errors="ferry.windows-1252")


class LineTooLong(ValueError):
    """A text line beyond MAX_LINE_CHARS: memory must not grow with a file's longest line."""


# Far beyond any real CSV row (the csv module refuses fields over 128 KiB anyway).
MAX_LINE_CHARS = 16 * 1024**2


def iter_text_lines(
    stream: BinaryIO,
    name: str,
    warn: Warn,
    chunk_size: int = 64 * 1024,
    max_line: int = MAX_LINE_CHARS,
) -> Iterator[str]:
    """Lines of a text file, decoded as it streams; each keeps its line ending.

    UTF-8 is expected (a BOM is dropped; UTF-16 with a BOM, as Excel writes it, is also
    read). Bytes that are not UTF-8 are read as Windows-1252, the usual encoding of CSVs
    saved by Windows spreadsheets, and the admin is warned once per file: the text is
    kept rather than the rows dropped.

    Raises LineTooLong once a line grows beyond `max_line` characters.
    """
    decoder = None
    pending = ""
    replaced = 0
    while True:
        data = stream.read(chunk_size)
        if decoder is None:
            decoder = _decoder_for(data)
        _fallback_state.count = 0
        text = decoder.decode(data, final=not data)
        replaced += _fallback_state.count
        pending += text
        # `pending` never holds a newline between chunks, so only the new text is searched:
        # a long line costs linear time, not quadratic.
        if "\n" in text:
            *lines, pending = pending.split("\n")
            for line in lines:
                yield line + "\n"
        if len(pending) > max_line:
            raise LineTooLong(f"{name} has a line longer than {max_line} characters")
        if not data:
            break
    if pending:
        yield pending
    if replaced:
        warn(f"{name} is not valid UTF-8; {replaced} byte(s) were read as Windows-1252 (Latin-1).")


# --- JSON -------------------------------------------------------------------------------


class NotAJsonArray(ValueError):
    """The file holds JSON, but not the array the format puts there."""


class OversizedJsonValue(ValueError):
    """One JSON value is larger than ArchiveLimits.max_json_value_bytes."""


class _ValueBudget:
    """Stops ijson from building one item larger than the budget.

    ijson only hands over an item once it is complete, so the bytes read since the last
    item bound the memory that item can take.
    """

    def __init__(self, stream: BinaryIO, limit: int, name: str):
        self._stream = stream
        self._limit = limit
        self._name = name
        self.since_item = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.since_item += len(data)
        if self.since_item > self._limit:
            raise OversizedJsonValue(
                f"{self._name} holds a single value larger than {self._limit} bytes"
            )
        return data


class JsonTooDeep(ValueError):
    """JSON nested deeper than MAX_JSON_DEPTH; ijson's cost grows with depth squared."""


# Real exports nest a handful of levels; ijson's work per event grows with the depth
# (it rebuilds the prefix), so a file of nothing but `[[[[...` would hold the GIL for
# minutes.
MAX_JSON_DEPTH = 256
_STRUCTURAL = bytes(range(256)).translate(None, b'[]{}"\\')
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class JsonDepthGuard:
    """Wraps a byte stream read by ijson; raises JsonTooDeep when the JSON nests too deep.

    It tracks brackets outside strings with C-speed passes (regex, translate), so
    reading stays cheap on large files.
    """

    def __init__(self, stream, name: str, max_depth: int = MAX_JSON_DEPTH):
        self._stream = stream
        self._name = name
        self._max_depth = max_depth
        self._depth = 0
        self._in_string = False
        self._carry = b""  # a trailing backslash whose escaped byte is in the next chunk

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._scan(data)
        return data

    def _scan(self, data: bytes) -> None:
        text = _ESCAPE.sub(b"", self._carry + data)
        self._carry = b""
        if text.endswith(b"\\"):
            self._carry, text = b"\\", text[:-1]
        text = text.translate(None, _STRUCTURAL).replace(b"\\", b"")
        if self._in_string:
            end = text.find(b'"')
            if end < 0:
                return
            text, self._in_string = text[end + 1 :], False
        text = _STRING.sub(b"", text)
        if b'"' in text:  # a string left open at the chunk's end
            text, self._in_string = text[: text.index(b'"')], True
        depth = self._depth
        for byte in text:
            depth += _DEPTH_STEP[byte]
            if depth > self._max_depth:
                raise JsonTooDeep(f"{self._name} nests deeper than {self._max_depth} levels")
        self._depth = depth


def _skip_bom_and_space(stream: io.BufferedReader) -> bytes:
    """The first meaningful byte, left unread; b'' for an empty stream."""
    head = stream.peek(3)[:3]
    if head.startswith(codecs.BOM_UTF8):
        stream.read(3)
    while True:
        head = stream.peek(1)
        if not head:
            return b""
        stripped = head.lstrip(b" \t\r\n")
        if stripped:
            stream.read(len(head) - len(stripped))
            return stripped[:1]
        stream.read(len(head))


def iter_json_array(stream: io.BufferedReader, name: str, limits: ArchiveLimits) -> Iterator[Any]:
    """The items of a top-level JSON array, one at a time.

    Raises NotAJsonArray, OversizedJsonValue or ijson.JSONError; callers decide whether
    that loses one file or the whole import.
    """
    first = _skip_bom_and_space(stream)
    if first == b"":
        raise NotAJsonArray(f"{name} is empty")
    if first != b"[":
        raise NotAJsonArray(f"{name} does not hold a JSON array")
    # A file smaller than the value budget cannot break it, and orjson parses it six
    # times faster than ijson (ijson was a fifth of a Slack prepare). Anything orjson
    # refuses goes through ijson as before, so items and errors stay the same (but for
    # an integer beyond 64 bits, which orjson reads as a float where ijson stops).
    whole = min(_WHOLE_ARRAY_BYTES, limits.max_json_value_bytes)
    head = stream.read(whole + 1)
    if len(head) <= whole:
        try:
            items = orjson.loads(head)
        except orjson.JSONDecodeError:
            items = None
        if isinstance(items, list):
            yield from items
            return
    # Deep nesting is what makes ijson slow (quadratic), so the guard sits on the stream.
    guarded = JsonDepthGuard(_Prefixed(head, stream), name)
    budget = _ValueBudget(guarded, limits.max_json_value_bytes, name)
    for item in ijson.items(budget, "item", use_float=True):
        budget.since_item = 0
        yield item


class _Prefixed:
    """`prefix` and then the rest of `stream`, as one readable stream."""

    def __init__(self, prefix: bytes, stream: BinaryIO):
        self._prefix = memoryview(prefix)
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if not self._prefix:
            return self._stream.read(size)
        if size < 0:
            data = bytes(self._prefix) + self._stream.read()
            self._prefix = memoryview(b"")
            return data
        data = bytes(self._prefix[:size])
        # Once used up, let go of the prefix's bytes.
        self._prefix = self._prefix[size:] if size < len(self._prefix) else memoryview(b"")
        return data


JSON_ERRORS = (
    NotAJsonArray,
    OversizedJsonValue,
    JsonTooDeep,
    ijson.JSONError,
    UnicodeDecodeError,
)


def report_progress(
    options_progress: Callable[[float], None] | None, done: int, total: int
) -> None:
    if options_progress is not None and total > 0:
        options_progress(min(100.0, 100.0 * done / total))
