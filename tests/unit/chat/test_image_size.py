"""Image sizes read from file headers, for the attachments of imported images."""

from __future__ import annotations

import struct

import pytest

from ferry.chat.image_size import image_dimensions
from tests.support.images import jpeg_header, png


def _webp(chunk: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


VP8 = b"VP8 " + b"\x00" * 7 + b"\x9d\x01\x2a" + struct.pack("<HH", 320, 200) + b"\x00" * 8
VP8L = b"VP8L" + b"\x00" * 4 + b"\x2f" + ((99) | (49 << 14)).to_bytes(4, "little") + b"\x00" * 8
VP8X = b"VP8X" + b"\x00" * 8 + (1919).to_bytes(3, "little") + (1079).to_bytes(3, "little")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (png(7, 3), (7, 3)),
        (b"GIF89a" + struct.pack("<HH", 12, 34) + b"\x00" * 20, (12, 34)),
        (jpeg_header(640, 480), (640, 480)),
        # Metadata segments (here a large APP1) come before the frame header.
        (
            b"\xff\xd8\xff\xe1" + struct.pack(">H", 5002) + b"E" * 5000 + jpeg_header(30, 20)[2:],
            (30, 20),
        ),
        (_webp(VP8), (320, 200)),
        (_webp(VP8L), (100, 50)),
        (_webp(VP8X), (1920, 1080)),
    ],
)
def test_sizes_of_each_format(tmp_path, content, expected):
    path = tmp_path / "image"
    path.write_bytes(content)
    assert image_dimensions(path) == {"width": expected[0], "height": expected[1]}


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"plain text, not an image",
        png(7, 3)[:20],
        b"\xff\xd8\xff\xe0\x00",  # a JPEG cut inside its first segment
        b"\xff\xd8" + b"\x00" * 40,  # a JPEG whose segments are garbage
        b"GIF89a" + struct.pack("<HH", 0, 10),  # no width
    ],
)
def test_anything_else_has_no_size(tmp_path, content):
    path = tmp_path / "image"
    path.write_bytes(content)
    assert image_dimensions(path) is None


def test_a_missing_file_has_no_size(tmp_path):
    assert image_dimensions(tmp_path / "gone.png") is None
