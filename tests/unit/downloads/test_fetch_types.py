"""What a fetch cut short stores to go on later is used only when it is whole and sane."""

from __future__ import annotations

import pytest

from ferry.downloads.fetch_types import SEGMENTS, Resumable

SIZE = 1024 * 1024
ETAG = '"v1"'
IN_SEGMENTS = tuple(range(0, SIZE, SIZE // SEGMENTS))


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "x",
        {"length": SIZE, "validator": ETAG},
        {"length": True, "validator": ETAG, "starts": [0]},
        {"length": 0, "validator": ETAG, "starts": [0]},
        {"length": SIZE, "validator": "", "starts": [0]},
        {"length": SIZE, "validator": '"a"\r\nX-Evil: 1', "starts": [0]},
        {"length": SIZE, "validator": ETAG, "starts": "0"},
        {"length": SIZE, "validator": ETAG, "starts": []},
        {"length": SIZE, "validator": ETAG, "starts": [1, 2]},  # the first begins at 0
        {"length": SIZE, "validator": ETAG, "starts": [0, 9, 5]},
        {"length": SIZE, "validator": ETAG, "starts": [0, SIZE]},
        {"length": SIZE, "validator": ETAG, "starts": [0, 1, 2, 3, 4]},
        {"length": SIZE, "validator": ETAG, "starts": [0, True]},
    ],
)
def test_stored_resume_details_are_used_only_if_whole_and_sane(stored):
    assert Resumable.from_dict(stored) is None


def test_stored_resume_details_round_trip():
    resumable = Resumable(SIZE, ETAG, IN_SEGMENTS)
    assert Resumable.from_dict(resumable.to_dict()) == resumable
