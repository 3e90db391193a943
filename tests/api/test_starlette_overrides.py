"""The Starlette override is pinned to the Starlette it was written against."""

from __future__ import annotations

from importlib.metadata import version

from starlette.responses import FileResponse

from handlers.starlette_overrides import LenientFileResponse, applies_to


def test_the_override_is_pinned_to_the_starlette_it_was_written_against():
    assert applies_to(version("starlette")), (
        "starlette changed major version: re-read FileResponse's Range parsing that "
        "handlers/starlette_overrides.py overrides, then add the version to WRITTEN_AGAINST"
    )
    assert callable(getattr(FileResponse, "_parse_range_header", None))


def test_malformed_ranges_are_ignored_and_unsatisfiable_ones_refused():
    assert LenientFileResponse.range_is_satisfiable("bytes=abc", 100)
    assert LenientFileResponse.range_is_satisfiable(None, 100)
    assert LenientFileResponse.range_is_satisfiable("bytes=0-9", 100)
    assert not LenientFileResponse.range_is_satisfiable("bytes=200-300", 100)
