"""Pytest fixtures for the downloader tests, loaded through `pytest_plugins`."""

from __future__ import annotations

import pytest

from ferry.downloads import urllib3_vetted
from tests.support.downloads import FakeInternet
from tests.support.remote import RemoteServer


@pytest.fixture
def remote():
    with RemoteServer() as server:
        yield server


@pytest.fixture
def target_dir(tmp_path):
    directory = tmp_path / "files"
    directory.mkdir()
    return directory


@pytest.fixture
def internet(remote, monkeypatch):
    fake = FakeInternet(remote)
    monkeypatch.setattr(urllib3_vetted, "_open_socket", fake)
    return fake
