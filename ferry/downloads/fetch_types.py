"""What a fetch is given and what it reports: the sizes that shape a transfer, what lets
a fetch cut short by a crash go on, the answer it got and the file it made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ferry.downloads.bandwidth import TokenBucket
from ferry.downloads.movers import BodyMovers

# A big file from a server that takes byte ranges is fetched over this many connections
# at once, each writing its own part of the one `.part` file.
SEGMENTS = 4
MAX_VALIDATOR_LENGTH = 1024


@dataclass(frozen=True)
class TransferTuning:
    """Sizes and thresholds of a transfer; the defaults are the ones Ferry runs with."""

    # A file at least this big, from a server that takes byte ranges, is fetched in
    # SEGMENTS pieces at once.
    segmented_min_size: int = 64 * 1024 * 1024
    # Such a file is read over one connection for this long first; one that brings at
    # least `segment_below_rate` bytes a second reads on alone (a fast source gains
    # nothing from more connections, and hashing segments that arrive out of order costs
    # a second pass over their bytes). 0: segment at once.
    segment_probe_seconds: float = 0.5
    segment_below_rate: int = 64 * 1024 * 1024
    # Segments start on multiples of this, so no file-system block holds bytes of two
    # segments (a resume reads each segment's progress off the file's holes).
    segment_alignment: int = 1024 * 1024
    # A resume fetches again this much before the first hole of each segment: the block
    # the hole starts in may be only partly written.
    resume_margin: int = 1024 * 1024
    # Written bytes are handed to the disk a window at a time while the body still
    # arrives, so the fsync at the end waits for the last window instead of the whole file.
    writeback_window: int = 8 * 1024 * 1024
    # A download that could be resumed after a crash has its record (which says how) made
    # durable once it has run this long or holds this much; for a smaller, quicker one a
    # disk flush costs more than fetching it again would.
    checkpoint_after_seconds: float = 1.0
    checkpoint_after_bytes: int = 64 * 1024 * 1024
    # The bandwidth every transfer draws from (--max-download-rate); None: no limit.
    bandwidth: TokenBucket | None = None
    # A transient failure is tried again this many times (--download-retries), the n-th
    # retry after about retry_backoff * 2**(n-1) seconds (jittered, at most
    # retry_backoff_max), or after the server's Retry-After.
    retries: int = 3
    retry_backoff: float = 1.0
    retry_backoff_max: float = 60.0
    # Helper processes a body moved in turn is handed to, when one is free; None: every
    # body moves in this process.
    movers: BodyMovers | None = None


@dataclass(frozen=True)
class Resumable:
    """What lets a fetch cut short by a crash go on where it stopped: the entity's size,
    the validator that proves it unchanged (sent as If-Range), and where each segment
    of the file began (`(0,)` for a file written in order)."""

    length: int
    validator: str
    starts: tuple[int, ...] = (0,)

    @property
    def segmented(self) -> bool:
        return len(self.starts) > 1

    def to_dict(self) -> dict:
        return {"length": self.length, "validator": self.validator, "starts": list(self.starts)}

    @classmethod
    def from_dict(cls, data: object) -> Resumable | None:
        """None for anything `to_dict` did not write."""
        if not isinstance(data, dict):
            return None
        length, validator, starts = (data.get(k) for k in ("length", "validator", "starts"))
        if not (
            isinstance(length, int)
            and not isinstance(length, bool)
            and length > 0
            and isinstance(validator, str)
            and 0 < len(validator) <= MAX_VALIDATOR_LENGTH
            and validator.isprintable()
            and isinstance(starts, list)
            and 0 < len(starts) <= SEGMENTS
            and all(isinstance(s, int) and not isinstance(s, bool) for s in starts)
        ):
            return None
        if starts[0] != 0 or starts != sorted(set(starts)) or starts[-1] >= length:
            return None
        return cls(length, validator, tuple(starts))


@dataclass(frozen=True)
class PartialFile:
    """A part file an earlier run left behind, to be finished instead of fetched again."""

    path: Path
    name: str
    resumable: Resumable


@dataclass(frozen=True)
class ResponseInfo:
    url: str
    status: int
    content_length: int | None
    content_type: str | None
    filename: str
    part_path: Path
    # How the transfer could be resumed after a crash (None: it could not).
    resumable: Resumable | None = None
    # Bytes the part file already held when this transfer began (a resume).
    present: int = 0


@dataclass(frozen=True)
class FetchResult:
    path: Path
    filename: str
    size: int
    content_type: str | None
    # The sha256 of what was written, hex.
    sha256: str | None = None
