"""An override of Starlette's private Range parsing in `FileResponse`.

What it replaces: `FileResponse._parse_range_header`, which answers a malformed Range
header with a text/plain 400. RFC 9110 lets a server ignore a Range header it cannot
parse and send the whole file, which is what clients (and the spec) expect; an
unsatisfiable range still raises Starlette's `RangeNotSatisfiable`, turned into Ferry's
416 by the caller.

Written against Starlette 1.x (`WRITTEN_AGAINST`); a test fails when the installed
Starlette is another major version or no longer has the private method.
"""

from __future__ import annotations

from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable

# The Starlette major versions whose FileResponse internals this override was read against.
WRITTEN_AGAINST = (1,)


def applies_to(starlette_version: str) -> bool:
    return int(starlette_version.split(".")[0]) in WRITTEN_AGAINST


class LenientFileResponse(FileResponse):
    """A file response that ignores a malformed Range header instead of refusing it."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int):
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader:
            return []

    @classmethod
    def range_is_satisfiable(cls, http_range: str | None, file_size: int) -> bool:
        if http_range is None:
            return True
        try:
            cls._parse_range_header(http_range, file_size)
        except RangeNotSatisfiable:
            return False
        return True
