"""HipChat export bytes: encrypted (.tar.gz.aes) exports, and damaged or bomb-like gzip."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ferry.chat.parsers.base import ArchiveLimits, ImportFileError
from tests.support.hipchat_export import add, hostile, openssl_encrypt, prepare


@pytest.mark.parametrize("digest", ["md5", "sha256"])
def test_encrypted_export_is_decrypted_with_either_key_derivation(tmp_path, hipchat_bytes, digest):
    path = tmp_path / "export.tar.gz.aes"
    path.write_bytes(openssl_encrypt(hipchat_bytes, "pässword", digest))
    assert len(prepare(path, password="pässword").messages) == 9


def test_encryption_is_recognised_by_content_not_name(tmp_path, hipchat_bytes, hipchat_export):
    disguised = tmp_path / "renamed.tar.gz"
    disguised.write_bytes(openssl_encrypt(hipchat_bytes, "pw", "sha256"))
    assert len(prepare(disguised, password="pw").messages) == 9
    assert len(prepare(hipchat_export, password="ignored for plain exports").messages) == 9


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl binary")
@pytest.mark.parametrize("digest", ["md5", "sha256"])
def test_export_encrypted_by_the_openssl_tool(tmp_path, hipchat_export, digest):
    out = tmp_path / "export.tar.gz.aes"
    subprocess.run(
        [
            "openssl",
            "enc",
            "-aes-256-cbc",
            "-salt",
            "-md",
            digest,
            "-pass",
            "pass:s3cret",
            "-in",
            str(hipchat_export),
            "-out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    assert len(prepare(out, password="s3cret").users) == 3


def test_encrypted_export_without_password_asks_for_one(tmp_path, hipchat_bytes):
    path = tmp_path / "export.tar.gz.aes"
    path.write_bytes(openssl_encrypt(hipchat_bytes, "pw", "md5"))
    with pytest.raises(ImportFileError, match="password is needed"):
        prepare(path)


def test_wrong_password_is_reported(tmp_path, hipchat_bytes):
    path = tmp_path / "export.tar.gz.aes"
    path.write_bytes(openssl_encrypt(hipchat_bytes, "right", "md5"))
    with pytest.raises(ImportFileError, match="^wrong password"):
        prepare(path, password="wrong")


def test_truncated_encrypted_export_is_an_extract_error(tmp_path, hipchat_bytes):
    path = tmp_path / "export.tar.gz.aes"
    path.write_bytes(openssl_encrypt(hipchat_bytes, "pw", "md5")[:-7])
    with pytest.raises(ImportFileError, match="error-import-file-extract-error"):
        prepare(path, password="pw")


def test_decompression_bomb_fails(tmp_path):
    path = hostile(tmp_path, lambda a: add(a, "rooms/1/files/zeros", bytes(40 * 1024**2)))
    with pytest.raises(ImportFileError, match="decompression bomb"):
        prepare(path)


def test_total_size_limit(tmp_path):
    path = hostile(tmp_path, lambda a: add(a, "rooms/1/files/blob", os.urandom(300_000)))
    with pytest.raises(ImportFileError, match="more than 100000 bytes"):
        prepare(path, limits=ArchiveLimits(max_total_size=100_000))


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_export_is_an_extract_error(tmp_path, hipchat_bytes, cut):
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(hipchat_bytes[: int(len(hipchat_bytes) * cut)])
    with pytest.raises(ImportFileError, match="^error-import-file-extract-error: "):
        prepare(path)


def test_corrupt_gzip_is_an_extract_error(tmp_path, hipchat_bytes):
    damaged = bytearray(hipchat_bytes)
    for i in range(len(damaged) // 2, len(damaged) // 2 + 16):
        damaged[i] ^= 0x5A
    path = tmp_path / "bad.tar.gz"
    path.write_bytes(bytes(damaged))
    with pytest.raises(ImportFileError, match="^error-import-file-extract-error: "):
        prepare(path)
