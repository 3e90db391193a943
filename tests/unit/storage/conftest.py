"""A workspace of three rooms, with shards small enough that every test crosses them."""

from __future__ import annotations

import pytest

from storage import message_shards
from storage.workspace import WorkspaceStore


@pytest.fixture
def ws(store, monkeypatch):
    # Small shards make every test cross shard boundaries.
    monkeypatch.setattr(message_shards, "SHARD_MAX", 7)
    ws = WorkspaceStore(store)
    ws.insert_rooms(
        [
            {"_id": "R1", "t": "c", "name": "general", "importIds": ["C1"]},
            {"_id": "R2", "t": "p", "name": "secret", "importIds": ["G1"]},
            {"_id": "ab", "t": "d", "uids": ["b", "a"], "usernames": ["bob", "al"]},
        ]
    )
    return ws
