"""The store survives being killed mid-write, and refuses a second owner."""

import random
import textwrap

import pytest

from storage.store import DataDirLocked, Store
from storage.users import UserRepository
from tests.support.kills import acknowledged_before_kill

WRITER = textwrap.dedent(
    """
    import sys
    from storage.store import Store
    from storage.users import UserRepository
    store = Store(sys.argv[1])
    users = UserRepository(store)
    i = 0
    while True:
        users.insert({"_id": f"u{i}", "username": f"user{i}", "bio": "x" * (i % 7 * 200)})
        if i % 3 == 0:
            users.delete(f"u{i - 1}") if i else None
        print(f"ack {i}", flush=True)
        i += 1
    """
)


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_an_acknowledged_write(tmp_path):
    state = tmp_path / "state"
    rng = random.Random(1234)
    for _ in range(25):
        acknowledged = [int(n) for (n,) in acknowledged_before_kill(WRITER, state, rng)]
        store = Store(state)
        users = UserRepository(store)
        assert acknowledged, "the writer never acknowledged a write"
        for i in acknowledged:
            if users.get(f"u{i}") is not None:
                continue
            # Only the next round removes u{i}, after it has inserted u{i + 1}; the kill
            # may land after that removal is durable and before its "ack" is printed.
            removable = (i + 1) % 3 == 0
            assert removable, f"acknowledged write u{i} was lost"
            assert users.get(f"u{i + 1}") is not None, f"u{i} vanished before u{i + 1} existed"
        store.close()
        # Start the next round from a clean slate so ids do not collide.
        for leftover in state.iterdir():
            leftover.unlink()
        assert not any(p.name.endswith(".tmp") for p in state.iterdir())


def test_second_store_on_the_same_directory_fails_fast(tmp_path):
    first = Store(tmp_path)
    with pytest.raises(DataDirLocked, match="another ferry process"):
        Store(tmp_path)
    first.close()
    Store(tmp_path).close()


def test_callers_get_copies_not_live_documents(tmp_path):
    store = Store(tmp_path)
    users = UserRepository(store)
    users.insert(
        {"_id": "u1", "username": "a", "emails": [{"address": "a@x.test", "verified": False}]}
    )
    copy = users.get("u1")
    copy["emails"][0]["address"] = "mutated"
    assert users.get("u1")["emails"][0]["address"] == "a@x.test"
    store.close()


def test_writes_are_durable_across_reopen(tmp_path):
    store = Store(tmp_path)
    UserRepository(store).insert_many([{"_id": f"u{i}", "username": f"n{i}"} for i in range(50)])
    store.close()
    reopened = Store(tmp_path)
    assert UserRepository(reopened).count_active_admins() == 0
    assert UserRepository(reopened).by_username("N7")["_id"] == "u7"
    reopened.close()


def test_opening_removes_temp_files_of_writes_a_kill_interrupted(tmp_path):
    state = tmp_path / "state"
    room = state / "workspace" / "rooms" / "r1"
    room.mkdir(parents=True)
    torn = [state / ".users.json.k3j_x.tmp", room / ".members.json.a8f1.tmp"]
    for path in torn:
        path.write_bytes(b'{"half')
    kept = [state / "users.json", room / "members.json", state / "import-files" / "a.tmp"]
    kept[2].parent.mkdir()
    for path in kept:
        path.write_bytes(b"{}")
    store = Store(state)
    try:
        assert [p.exists() for p in torn] == [False, False]
        assert all(p.exists() for p in kept)
    finally:
        store.close()


def test_a_write_the_disk_refuses_changes_nothing_in_memory(store, monkeypatch):
    users = UserRepository(store)
    users.insert({"_id": "u1", "username": "alice"})
    users.add_token("hash-1", "u1", "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("storage.store.write_atomically", disk_full)
    with pytest.raises(OSError):
        users.revoke_token("hash-1")
    with pytest.raises(OSError):
        users.update("u1", {"username": "mallory"})
    monkeypatch.undo()

    assert users.token("hash-1")["userId"] == "u1"
    assert users.get("u1")["username"] == "alice"
