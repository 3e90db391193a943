"""The bytes of a HipChat export, from the file to the tar stream.

Byte pipeline: file -> (decrypt) -> (gunzip) -> tar. Every step is a generator of
chunks, so the export is read front to back once and is never held in memory or
written to disk; gunzip inflates a chunk at a time and stops once the output passes
ArchiveLimits. ValueBoundedReader then bounds what one JSON value of a tar member may
take while ijson builds it.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ferry.chat.parsers.base import ArchiveLimits, ImportFileError

OPENSSL_MAGIC = b"Salted__"
# The third byte (deflate) makes a wrong key that passes for right even rarer.
GZIP_MAGIC = b"\x1f\x8b\x08"
_CHUNK = 64 * 1024
# Below this much output a high ratio is just tar padding and tiny JSON, not a bomb.
_RATIO_FLOOR = 16 * 1024**2

EXTRACT_ERROR = "error-import-file-extract-error"
TOO_LARGE = "error-import-file-too-large"


def read_chunks(
    raw: BinaryIO, size: int, on_progress: Callable[[float], None] | None
) -> Iterator[bytes]:
    done = 0
    reported = -1
    while chunk := raw.read(_CHUNK):
        done += len(chunk)
        yield chunk
        if on_progress and size:
            percent = int(99 * done / size)  # 100 only once every record has been reported
            if percent != reported:
                reported = percent
                on_progress(float(percent))


def _peek(chunks: Iterator[bytes], count: int) -> tuple[bytes, Iterator[bytes]]:
    """The first `count` bytes (fewer at end of input) and an iterator that still yields them."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= count:
            break
    return head[:count], _prepend(head, chunks)


def _prepend(head: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


def evp_bytes_to_key(password: bytes, salt: bytes, digest: str) -> tuple[bytes, bytes]:
    """OpenSSL's EVP_BytesToKey, one iteration: the AES-256 key and CBC iv of `openssl enc`."""
    derived = b""
    block = b""
    while len(derived) < 48:
        block = hashlib.new(digest, block + password + salt).digest()
        derived += block
    return derived[:32], derived[32:48]


def decrypt_if_needed(chunks: Iterator[bytes], password: str | None) -> Iterator[bytes]:
    head, chunks = _peek(chunks, 32)
    if not head.startswith(OPENSSL_MAGIC):
        return chunks
    if not password:
        raise ImportFileError(
            "a password is needed: this HipChat export is encrypted (.tar.gz.aes); "
            "give the password that was set when it was exported"
        )
    if len(head) < 32:
        raise ImportFileError(f"{EXTRACT_ERROR}: the encrypted export is truncated")
    salt, first_block = head[8:16], head[16:32]
    # `openssl enc` hashed the password with MD5 before OpenSSL 1.1.0 and with SHA-256
    # since; HipChat's export used whichever its host had, so both are tried and the
    # gzip header that must open the plaintext tells which one is right.
    for digest in ("md5", "sha256"):
        key, iv = evp_bytes_to_key(password.encode("utf-8"), salt, digest)
        probe = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        if probe.update(first_block).startswith(GZIP_MAGIC):
            return _decrypt(_skip(chunks, 16), key, iv)
    raise ImportFileError(
        "wrong password: the HipChat export could not be decrypted with it "
        "(expected an `openssl enc -aes-256-cbc` file made with the MD5 or SHA-256 key derivation)"
    )


def _skip(chunks: Iterator[bytes], count: int) -> Iterator[bytes]:
    for chunk in chunks:
        if count >= len(chunk):
            count -= len(chunk)
            continue
        yield chunk[count:]
        count = 0


def _decrypt(chunks: Iterator[bytes], key: bytes, iv: bytes) -> Iterator[bytes]:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    for chunk in chunks:
        yield unpadder.update(decryptor.update(chunk))
    try:
        tail = decryptor.finalize()
        yield unpadder.update(tail) + unpadder.finalize()
    except ValueError as error:
        raise ImportFileError(
            f"{EXTRACT_ERROR}: the encrypted export is truncated or corrupt ({error})"
        ) from None


def gunzip_if_needed(chunks: Iterator[bytes], limits: ArchiveLimits) -> Iterator[bytes]:
    head, chunks = _peek(chunks, 2)
    if head != GZIP_MAGIC[:2]:
        return _bounded(chunks, limits)  # an already gunzipped .tar is welcome too
    return _gunzip(chunks, limits)


def _bounded(chunks: Iterator[bytes], limits: ArchiveLimits) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        _check_inflation(total, total, limits)
        yield chunk


def _gunzip(chunks: Iterator[bytes], limits: ArchiveLimits) -> Iterator[bytes]:
    """Inflate with zlib rather than tarfile's own reader: zlib checks the CRC and the
    length trailer, so a corrupt or truncated download is reported instead of imported
    half-way. Output is capped per call so a bomb never sits in memory."""
    inflater = zlib.decompressobj(wbits=31)
    mid_member = False
    consumed = produced = 0
    try:
        for chunk in chunks:
            consumed += len(chunk)
            data = chunk
            while data:
                if not mid_member:
                    # gzip allows members back to back (`cat a.gz b.gz`) and zero padding
                    data = data.lstrip(b"\0")
                    if not data:
                        break
                    mid_member = True
                out = inflater.decompress(data, _CHUNK)
                data = inflater.unconsumed_tail
                if inflater.eof:
                    data = inflater.unused_data + data
                    inflater = zlib.decompressobj(wbits=31)
                    mid_member = False
                produced += len(out)
                _check_inflation(produced, consumed, limits)
                if out:
                    yield out
    except zlib.error as error:
        raise ImportFileError(f"{EXTRACT_ERROR}: the gzip data is corrupt ({error})") from None
    if mid_member:
        raise ImportFileError(f"{EXTRACT_ERROR}: the gzip data ends too early (truncated file?)")


def _check_inflation(produced: int, consumed: int, limits: ArchiveLimits) -> None:
    if produced > limits.max_total_size:
        raise ImportFileError(
            f"{TOO_LARGE}: the export inflates to more than {limits.max_total_size} bytes"
        )
    if produced > _RATIO_FLOOR and produced > consumed * limits.max_compression_ratio:
        raise ImportFileError(
            f"{TOO_LARGE}: the export inflates more than {limits.max_compression_ratio} "
            "times its size; refusing a likely decompression bomb"
        )


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks, for tarfile and ijson."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = memoryview(chunk)
        count = min(len(target), len(self._buffer))
        target[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count

    def drain(self) -> None:
        """Read to the end, so the gzip trailer's CRC is checked after tar's end marker."""
        for _ in self._chunks:
            pass
        self._buffer = memoryview(b"")


class ValueBoundedReader:
    """Reads a tar member for ijson, refusing a single JSON value over the size limit:
    ijson builds each array item in memory, and nothing else bounds an item's size."""

    def __init__(self, member: BinaryIO, limit: int, name: str):
        self._member = member
        self._limit = limit
        self._name = name
        self._since_item = 0
        self.opening = b""  # the first non-blank byte: `[` for the arrays HipChat writes

    def read(self, size: int = -1) -> bytes:
        data = self._member.read(size if size >= 0 else _CHUNK)
        if not self.opening:
            self.opening = data.lstrip()[:1]
        self._since_item += len(data)
        if self._since_item > self._limit:
            raise ImportFileError(
                f"{TOO_LARGE}: {self._name} holds a single entry over {self._limit} bytes"
            )
        return data

    def item_done(self) -> None:
        self._since_item = 0
