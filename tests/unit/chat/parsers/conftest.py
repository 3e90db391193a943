"""Exports shared by the parser tests of one format's modules, built once per test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.chat.parsers.slack import SlackImporter
from tests.support.hipchat_export import full_export, make_tar
from tests.support.importers import RecordingSink, build_zip, prepare
from tests.support.slack_export import generated_export


@pytest.fixture(scope="module")
def hipchat_bytes(tmp_path_factory) -> bytes:
    return make_tar(tmp_path_factory.mktemp("hc") / "export.tar.gz", full_export()).read_bytes()


@pytest.fixture
def hipchat_export(tmp_path, hipchat_bytes) -> Path:
    path = tmp_path / "export.tar.gz"
    path.write_bytes(hipchat_bytes)
    return path


@pytest.fixture(scope="module")
def generated_slack(tmp_path_factory) -> RecordingSink:
    source = build_zip(tmp_path_factory.mktemp("gen") / "slack.zip", generated_export())
    return prepare(SlackImporter(), source)
