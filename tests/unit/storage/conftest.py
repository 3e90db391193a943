"""Every repository test runs on both backends: TinyDB files and a PostgreSQL database.

The PostgreSQL variants are skipped, saying why, only where PostgreSQL is not installed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from storage import message_shards
from storage.backends import Repositories, open_postgres, open_tinydb
from tests.support.postgres import SKIP_REASON, databases


class Backend:
    """Opens the repositories of one storage place, again and again (a restart)."""

    def __init__(self, kind: str, state_dir: Path):
        self.kind = kind
        self._state_dir = state_dir
        self._url = databases.new() if kind == "postgres" else None
        self._open: list[Repositories] = []

    def open(self) -> Repositories:
        """The repositories over the same storage; an earlier opening is closed first
        (TinyDB allows one owner at a time)."""
        self.close()
        if self._url:
            repositories = open_postgres(self._url, self._state_dir, fsync=False)
        else:
            repositories = open_tinydb(self._state_dir, fsync=False)
        self._open.append(repositories)
        return repositories

    def close(self) -> None:
        while self._open:
            self._open.pop().close()


@pytest.fixture(params=["tinydb", "postgres"])
def backend(request, tmp_path):
    if request.param == "postgres" and not databases.available:
        pytest.skip(SKIP_REASON)
    opened = Backend(request.param, tmp_path / "state")
    yield opened
    opened.close()


@pytest.fixture
def repos(backend) -> Repositories:
    return backend.open()


@pytest.fixture
def ws(repos, monkeypatch):
    """A workspace of three rooms, with shards small enough that every test crosses them."""
    monkeypatch.setattr(message_shards, "SHARD_MAX", 7)
    ws = repos.workspace
    ws.insert_rooms(
        [
            {"_id": "R1", "t": "c", "name": "general", "importIds": ["C1"]},
            {"_id": "R2", "t": "p", "name": "secret", "importIds": ["G1"]},
            {"_id": "ab", "t": "d", "uids": ["b", "a"], "usernames": ["bob", "al"]},
        ]
    )
    return ws


def claimed_by_two_workers(claim_one: Callable[[str], str | None]) -> list[str]:
    """Two workers, started together, each calling `claim_one(worker)` (the id of the
    job it claimed, or None when none is left) until nothing is left; every id claimed,
    by either."""
    won: dict[str, list[str]] = {"w1": [], "w2": []}
    barrier = threading.Barrier(2)

    def work(worker: str) -> None:
        barrier.wait()
        while (claimed := claim_one(worker)) is not None:
            won[worker].append(claimed)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in won]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won["w1"] + won["w2"]
