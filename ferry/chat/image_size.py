"""The width and height of a PNG, GIF, JPEG or WebP image, read from its first bytes.

Rocket.Chat shows an imported image with `image_dimensions`; these four formats keep their
size near the start of the file, so no image library is needed to find it. Anything
else, or a header that does not parse, has no size.
"""

from __future__ import annotations

import struct
from pathlib import Path

# JPEG puts its frame header after the metadata segments (EXIF thumbnails can be large).
_JPEG_SCAN_LIMIT = 1024 * 1024
# Start-of-frame markers (baseline, progressive, ...), not the DHT/JPG/DAC ones between.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# A size over this is a corrupt header, not an image.
_MAX_SIDE = 1 << 16


def image_dimensions(path: Path) -> dict | None:
    """`{"width": w, "height": h}` of the image at `path`, or None when it is not one."""
    try:
        with path.open("rb") as handle:
            head = handle.read(32)
            size = _from_head(head)
            if size is None and head.startswith(b"\xff\xd8"):
                handle.seek(2)
                size = _jpeg(handle.read(_JPEG_SCAN_LIMIT))
    except (OSError, struct.error):  # unreadable, or a header cut short
        return None
    if size is None:
        return None
    width, height = size
    if not (0 < width <= _MAX_SIDE and 0 < height <= _MAX_SIDE):
        return None
    return {"width": width, "height": height}


def _from_head(head: bytes) -> tuple[int, int] | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", head[6:10])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head[12:])
    return None


def _webp(chunk: bytes) -> tuple[int, int] | None:
    kind = chunk[:4]
    if kind == b"VP8 " and chunk[11:14] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", chunk[14:18])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and chunk[8:9] == b"\x2f":
        bits = int.from_bytes(chunk[9:13], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        width = int.from_bytes(chunk[12:15], "little") + 1
        height = int.from_bytes(chunk[15:18], "little") + 1
        return width, height
    return None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    """The frame size from a JPEG's segments, `data` starting after its SOI marker."""
    position = 0
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if length < 2:
            return None
        if marker in _JPEG_FRAMES:
            frame = data[position + 4 : position + 9]
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height
        position += 2 + length
    return None
