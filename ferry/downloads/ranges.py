"""Byte ranges: how a file is cut into segments, asking for a range and telling whether
the server sent exactly that, and whether a response could be resumed by range."""

from __future__ import annotations

import contextlib

from urllib3.response import BaseHTTPResponse

from ferry.downloads.fetch_types import SEGMENTS, Resumable, TransferTuning
from ferry.downloads.policy import CheckedUrl
from ferry.downloads.request import get, header_length, identity_encoded, strong_validator
from ferry.downloads.urllib3_vetted import VettedPoolManager
from ferry.downloads.watchdog import Transfer


def segments(length: int, count: int, alignment: int) -> list[tuple[int, int]]:
    """At most `count` (start, size) pieces covering `length` bytes in order, each
    starting on a multiple of `alignment`."""
    step = -(-length // count)
    step = -(-step // alignment) * alignment
    return [(start, min(step, length - start)) for start in range(0, length, step)]


def range_headers(start: int, size: int, validator: str | None = None) -> dict:
    headers = {"Range": f"bytes={start}-{start + size - 1}"}
    if validator is not None:
        headers["If-Range"] = validator
    return headers


def serves_range(
    response: BaseHTTPResponse, start: int, size: int, length: int | None = None
) -> bool:
    """Whether `response` is a 206 of exactly bytes start..start+size-1 of an
    identity-encoded entity (of `length` bytes, if given)."""
    end = start + size - 1
    total = response.headers.get("Content-Range", "").rpartition("/")[2]
    return (
        response.status == 206
        and response.headers.get("Content-Range", "").startswith(f"bytes {start}-{end}/")
        and header_length(response) == size
        and identity_encoded(response)
        and total.isdigit()
        and (length is None or int(total) == length)
    )


def _open_range(
    connections: VettedPoolManager,
    transfer: Transfer,
    target: CheckedUrl,
    start: int,
    size: int,
    resumable: Resumable | None = None,
) -> BaseHTTPResponse | None:
    """A 206 for exactly bytes start..start+size-1 of the same entity, else None."""
    validator = resumable.validator if resumable is not None else None
    length = resumable.length if resumable is not None else None
    response = get(connections, transfer, target, range_headers(start, size, validator))
    if serves_range(response, start, size, length):
        return response
    response.close()
    return None


def open_ranges(
    connections: VettedPoolManager,
    transfer: Transfer,
    target: CheckedUrl,
    pieces: list[tuple[int, int]],
    closing: contextlib.ExitStack,
    resumable: Resumable | None = None,
) -> list[BaseHTTPResponse] | None:
    """One open 206 per piece, closed with `closing`; None (and none open) if the
    server refuses any of them."""
    opened: list[BaseHTTPResponse] = []
    with contextlib.ExitStack() as on_refusal:
        for start, size in pieces:
            ranged = _open_range(connections, transfer, target, start, size, resumable)
            if ranged is None:
                return None
            on_refusal.enter_context(contextlib.closing(ranged))
            opened.append(ranged)
        closing.push(on_refusal.pop_all())
    return opened


def can_segment(response: BaseHTTPResponse, length: int | None, tuning: TransferTuning) -> bool:
    return (
        length is not None
        and length >= tuning.segmented_min_size
        and response.status == 200
        and response.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
        and identity_encoded(response)
    )


def resumable_from(
    response: BaseHTTPResponse, length: int | None, tuning: TransferTuning
) -> Resumable | None:
    if (
        length is None
        or length <= 0
        or response.status != 200
        or not identity_encoded(response)
        or response.headers.get("Accept-Ranges", "").strip().lower() != "bytes"
    ):
        return None
    validator = strong_validator(response)
    if validator is None:
        return None
    pieces = (
        segments(length, SEGMENTS, tuning.segment_alignment)
        if can_segment(response, length, tuning)
        else [(0, length)]
    )
    return Resumable(length, validator, tuple(start for start, _ in pieces))
