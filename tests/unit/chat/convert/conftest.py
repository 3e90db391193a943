"""The `world` fixture: fresh stores with one admin, for each converter test."""

from __future__ import annotations

import pytest

from tests.support.staged_import import World


@pytest.fixture
def world(tmp_path):
    world = World(tmp_path)
    yield world
    world.store.close()
