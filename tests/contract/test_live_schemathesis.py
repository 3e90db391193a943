"""The Schemathesis CLI run against a live `ferry serve` passes: no failure, no error, and
no operation the run's admin could not get past authentication on."""

import pytest

from tests.contract.live_schemathesis import run

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(240)]


def test_schemathesis_cli_finds_nothing_against_a_live_server():
    assert run(max_time=90) == 0
