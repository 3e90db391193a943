"""Checking a fetched file against the checksum its starter gave, and the sha256 every
completed download records."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ferry.downloads.part_files import local_error
from ferry.downloads.policy import CHECKSUM_MISMATCH, FetchError

# Hex digest length of each algorithm a checksum may name.
ALGORITHMS = {"sha256": 64, "sha512": 128, "sha1": 40, "md5": 32}
CHECKSUM_PATTERN = re.compile(r"^(sha256|sha512|sha1|md5):([0-9a-fA-F]+)$")
_READ_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    hexdigest: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"

    @classmethod
    def parse(cls, text: str) -> Checksum:
        """`ALGO:HEX` with a known algorithm and a digest of its length.

        Raises ValueError with a message a user can act on.
        """
        match = CHECKSUM_PATTERN.fullmatch(text.strip())
        if match is None:
            raise ValueError("checksum must be ALGO:HEX with ALGO one of " + ", ".join(ALGORITHMS))
        algorithm, digest = match.group(1), match.group(2).lower()
        if len(digest) != ALGORITHMS[algorithm]:
            raise ValueError(
                f"a {algorithm} checksum has {ALGORITHMS[algorithm]} hex digits, not {len(digest)}"
            )
        return cls(algorithm, digest)


def verify(path: Path, expected: Checksum | None) -> str:
    """The file's sha256; raises FetchError(CHECKSUM_MISMATCH) when `expected` disagrees.

    The file is read once for both digests, just after it was written and flushed, so
    its pages are still cached: the body may have gone from socket to disk inside the
    kernel (splice) or over several connections at once, so no single in-order pass over
    its bytes exists while it arrives.
    """
    sha256 = hashlib.sha256()
    other = (
        hashlib.new(expected.algorithm)
        if expected is not None and expected.algorithm != "sha256"
        else None
    )
    try:
        with open(path, "rb", buffering=0) as file:
            os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            buffer = bytearray(_READ_SIZE)
            view = memoryview(buffer)
            while read := file.readinto(buffer):
                sha256.update(view[:read])
                if other is not None:
                    other.update(view[:read])
    except OSError as exc:
        raise local_error(exc, f"read {path.name} back to check it") from None
    written = sha256.hexdigest()
    if expected is not None:
        actual = written if other is None else other.hexdigest()
        if actual != expected.hexdigest:
            raise FetchError(
                CHECKSUM_MISMATCH,
                f"the file's {expected.algorithm} is {actual}, not the {expected.hexdigest} given;"
                " nothing was saved",
            )
    return written
