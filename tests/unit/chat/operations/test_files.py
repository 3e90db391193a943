"""Decoding an upload's base64 a chunk at a time."""

import base64
import io

import pytest

from ferry.chat.operations import files
from ferry.chat.operations.files import decode_base64_capped
from ferry.kernel.errors import InvalidInput, MeteorError


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(files, "BASE64_CHUNK", 5)


@pytest.mark.parametrize("data", [b"", b"a", b"ab", b"abc", bytes(range(256)) * 3])
def test_decodes_what_b64decode_decodes(data):
    out = io.BytesIO()
    decode_base64_capped(io.BytesIO(base64.b64encode(data)), out, 10**6)
    assert out.getvalue() == data


@pytest.mark.parametrize("text", [b"QQ", b"QQ==QUFB", b"QUFB!", b"QUFB\n", b"Q===", b"=QUF"])
def test_refuses_what_b64decode_refuses(text):
    with pytest.raises(ValueError):
        base64.b64decode(text, validate=True)
    with pytest.raises(InvalidInput, match="not valid base64"):
        decode_base64_capped(io.BytesIO(text), io.BytesIO(), 10**6)


def test_stops_at_the_cap():
    with pytest.raises(MeteorError, match="error-file-too-large"):
        decode_base64_capped(io.BytesIO(base64.b64encode(b"x" * 101)), io.BytesIO(), 100)
