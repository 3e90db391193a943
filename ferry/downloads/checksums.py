"""Checking a fetched file against the checksum its starter gave, and the sha256 every
completed download records (computed while the file streams, in `digests`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ferry.downloads.policy import CHECKSUM_MISMATCH, FetchError

# Hex digest length of each algorithm a checksum may name.
ALGORITHMS = {"sha256": 64, "sha512": 128, "sha1": 40, "md5": 32}
CHECKSUM_PATTERN = re.compile(r"^(sha256|sha512|sha1|md5):([0-9a-fA-F]+)$")


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


def algorithms_for(expected: Checksum | None) -> tuple[str, ...]:
    """What a download hashes while it streams: sha256 for its record, and the
    algorithm of the checksum it was given."""
    if expected is None or expected.algorithm == "sha256":
        return ("sha256",)
    return ("sha256", expected.algorithm)


def check(digests: dict[str, str], expected: Checksum | None) -> str:
    """The written file's sha256 out of `digests` (from `algorithms_for(expected)`);
    raises FetchError(CHECKSUM_MISMATCH) when `expected` disagrees."""
    if expected is not None:
        actual = digests[expected.algorithm]
        if actual != expected.hexdigest:
            raise FetchError(
                CHECKSUM_MISMATCH,
                f"the file's {expected.algorithm} is {actual}, not the {expected.hexdigest} given;"
                " nothing was saved",
            )
    return digests["sha256"]
