"""HipChat message text and times: sub-second order, and every time form HipChat wrote."""

from __future__ import annotations

import pytest

from ferry.chat.parsers.hipchat_text import parse_timestamp
from tests.support.hipchat_export import epoch, prepare


def test_sub_second_order_survives(hipchat_export):
    sink = prepare(hipchat_export)
    m3 = sink.message("hipchatenterprise-7-user-m3")
    assert m3["ts"] - epoch("2017-06-26T15:22:00") == pytest.approx(1e-6, abs=1e-7)


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("2017-06-26T15:21:44Z 123456", "2017-06-26T15:21:44.123456"),
        ("2017-06-26T17:21:45.5+02:00", "2017-06-26T15:21:45.5"),
        ("2016-06-14T00:00:00", "2016-06-14T00:00:00"),  # no offset: UTC, as HipChat stored it
    ],
)
def test_every_time_form_hipchat_wrote_is_read_as_utc(written, meant):
    assert parse_timestamp(written) == pytest.approx(epoch(meant), abs=1e-7)


def test_epoch_seconds_are_kept_and_unreadable_times_are_none():
    assert parse_timestamp(1498490504) == 1498490504.0
    assert [parse_timestamp(v) for v in ("yesterday", True, None, [])] == [None] * 4
