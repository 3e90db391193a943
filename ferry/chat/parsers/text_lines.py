"""Text files inside exports, decoded as they stream.

CSV exports come from many tools: UTF-8 with or without a BOM, UTF-16 from Excel, and
Windows-1252 from older Windows spreadsheets. Lines are decoded chunk by chunk, so a
file never sits in memory whole, and one line is bounded by MAX_LINE_CHARS.
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

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
    warn: Callable[[str], None],
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
