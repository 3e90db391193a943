"""Users, tokens and import operations: the same answers from both backends."""

from __future__ import annotations


def user(user_id: str, username: str, created: str, **extra) -> dict:
    return {"_id": user_id, "username": username, "createdAt": created, **extra}


def test_users_are_found_by_id_username_email_and_import_id(repos):
    users = repos.users
    users.insert_many(
        [
            user("u1", "Alice", "2024-01-02T00:00:00.000Z", emails=[{"address": " A@X.org"}]),
            user("u2", "bob", "2024-01-01T00:00:00.000Z", importIds=["S1", "S2"]),
        ]
    )
    assert users.get("u1")["username"] == "Alice"
    assert users.by_username("ALICE")["_id"] == "u1"
    assert users.by_email("a@x.ORG ")["_id"] == "u1"
    assert users.id_for_import_id("S2") == "u2"
    assert users.get("nobody") is None and users.by_username("carol") is None
    assert users.id_for_import_id("S9") is None


def test_user_updates_move_the_lookups_and_pages_follow_creation_order(repos):
    users = repos.users
    users.insert(user("u1", "alice", "2024-01-02T00:00:00.000Z"))
    users.insert(user("u2", "bob", "2024-01-01T00:00:00.000Z", roles=["admin"]))
    users.insert(user("u3", "carl", "2024-01-01T00:00:00.000Z", roles=["admin"], active=False))
    updated = users.update("u1", {"username": "alicia", "_pendingAvatarUrl": "http://a"})
    assert updated["username"] == "alicia" and updated["createdAt"].startswith("2024-01-02")
    assert users.by_username("alice") is None and users.by_username("alicia")["_id"] == "u1"
    assert users.update("ghost", {"username": "x"}) is None
    assert [u["_id"] for u in users.with_pending_avatars()] == ["u1"]
    page, total = users.page(1, 5)
    assert ([u["_id"] for u in page], total) == (["u3", "u1"], 3)
    assert users.count() == 3 and users.count_active_admins() == 1
    assert users.delete("u2") and not users.delete("u2")
    assert users.count_active_admins() == 0


def test_tokens_expire_revoke_and_go_with_their_user(repos):
    users = repos.users
    users.insert(user("u1", "alice", "2024-01-01T00:00:00.000Z"))
    users.add_token("old", "u1", "2024-01-01T00:00:00.000Z", "2024-01-02T00:00:00.000Z")
    users.add_token("keep", "u1", "2024-01-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z")
    users.add_token("other", "u1", "2024-01-03T00:00:00.000Z", "2024-02-03T00:00:00.000Z")
    assert users.token("old") is None  # expired by the time "other" was issued
    assert users.token("keep") == {
        "userId": "u1",
        "createdAt": "2024-01-01T00:00:00.000Z",
        "expiresAt": "2024-02-01T00:00:00.000Z",
    }
    assert users.revoke_tokens_of("u1", keep="keep") == 1
    assert users.token("other") is None and users.token("keep") is not None
    assert users.revoke_token("keep") and not users.revoke_token("keep")
    users.add_token("last", "u1", "2024-01-04T00:00:00.000Z", "2024-02-04T00:00:00.000Z")
    users.delete("u1")
    assert users.token("last") is None


def operation(op_id: str, ts: str, updated: str, **extra) -> dict:
    return {"_id": op_id, "ts": ts, "_updatedAt": updated, "valid": True, **extra}


def test_operations_latest_recent_and_invalidation(repos):
    operations = repos.operations
    operations.insert(operation("o1", "2024-01-01T00:00:00.000Z", "2024-01-05T00:00:00.000Z"))
    operations.insert(operation("o2", "2024-01-02T00:00:00.000Z", "2024-01-03T00:00:00.000Z"))
    assert operations.latest()["_id"] == "o2"
    assert [op["_id"] for op in operations.recent(5)] == ["o1", "o2"]
    changed = operations.update("o2", {"status": "importer_done", "count": {"total": 3}})
    assert changed["status"] == "importer_done" and changed["ts"].startswith("2024-01-02")
    assert operations.update("ghost", {"status": "x"}) is None
    assert sorted(operations.invalidate_all("2024-01-09T00:00:00.000Z")) == ["o1", "o2"]
    assert operations.invalidate_all("2024-01-10T00:00:00.000Z") == []
    assert all(op["valid"] is False for op in operations.all())
    assert operations.get("o1")["_updatedAt"] == "2024-01-09T00:00:00.000Z"


def test_records_survive_a_reopen(backend):
    first = backend.open()
    first.users.insert(user("u1", "alice", "2024-01-01T00:00:00.000Z"))
    first.operations.insert(operation("o1", "2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00Z"))
    first.downloads.save({"id": "d1", "status": "completed", "end_time": 5})
    again = backend.open()
    assert again.users.by_username("alice")["_id"] == "u1"
    assert again.operations.latest()["_id"] == "o1"
    assert [r["id"] for r in again.downloads.history()] == ["d1"]
