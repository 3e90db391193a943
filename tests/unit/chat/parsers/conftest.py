"""Exports shared by the parser tests of one format's modules, built once per test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.hipchat_export import full_export, make_tar


@pytest.fixture(scope="module")
def hipchat_bytes(tmp_path_factory) -> bytes:
    return make_tar(tmp_path_factory.mktemp("hc") / "export.tar.gz", full_export()).read_bytes()


@pytest.fixture
def hipchat_export(tmp_path, hipchat_bytes) -> Path:
    path = tmp_path / "export.tar.gz"
    path.write_bytes(hipchat_bytes)
    return path
