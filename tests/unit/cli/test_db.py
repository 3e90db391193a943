"""`ferry db upgrade|status` and `ferry migrate-storage` against a throwaway PostgreSQL."""

from __future__ import annotations

import pytest

from ferry.cli.main import main
from storage.backends import open_postgres, open_tinydb
from tests.support.postgres import SKIP_REASON, databases
from tests.support.workspace import import_file, message

pytestmark = pytest.mark.skipif(not databases.available, reason=SKIP_REASON)


def test_status_reports_pending_migrations_until_upgrade_applies_them(capsys):
    url = databases.new(migrated=False)
    assert main(["db", "status", "--database-url", url]) == 1
    assert "pending: 1" in capsys.readouterr().out
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert "applied 0001 initial" in capsys.readouterr().out
    assert main(["db", "status", "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert "applied: 1" in out and "pending: none" in out
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert "applied 0001" not in capsys.readouterr().out


def test_an_unreachable_database_is_a_clear_error(capsys):
    assert main(["db", "status", "--database-url", "postgresql://nobody@127.0.0.1:1/none"]) == 1
    assert "cannot connect to the database" in capsys.readouterr().err


def _fill(data_dir) -> None:
    """A small installation: every kind of record, a hidden message and a NUL included."""
    tinydb = open_tinydb(data_dir / "state", fsync=False)
    try:
        tinydb.users.insert_many(
            [
                {"_id": "u1", "username": "alice", "createdAt": "2024-01-01T00:00:00.000Z"},
                {"_id": "u2", "username": "bob", "createdAt": "2024-01-02T00:00:00.000Z"},
            ]
        )
        tinydb.users.add_token("h1", "u1", "2024-01-01T00:00:00.000Z", "2099-01-01T00:00:00.000Z")
        tinydb.downloads.save({"id": "d1", "status": "completed", "end_time": 9, "name": "a\x00"})
        tinydb.downloads.save({"id": "d2", "status": "downloading", "start_time": 3})
        tinydb.operations.insert({"_id": "o1", "ts": "t1", "_updatedAt": "t1", "valid": True})
        tinydb.workspace.set_members("R2", ["u1", "u2"])
        tinydb.workspace.insert_rooms(
            [{"_id": "R1", "t": "c", "name": "general"}, {"_id": "R2", "t": "p", "name": "team"}]
        )
        tinydb.workspace.upsert_messages(
            [message(i) for i in range(30)]
            + [message(30, _hidden=True), message(31, rid="R2", _importFile=import_file(1))]
        )
        tinydb.workspace.save_upload({"_id": "U1", "name": "a.txt"})
    finally:
        tinydb.close()


def test_migrate_storage_copies_every_record_and_refuses_a_second_run(tmp_path, capsys):
    data_dir = tmp_path / "data"
    _fill(data_dir)
    url = databases.new()
    assert main(["migrate-storage", "--from", str(data_dir), "--to", url]) == 0
    out = capsys.readouterr().out
    for line in ("users: 2", "tokens: 1", "downloads: 2", "operations: 1", "rooms: 2"):
        assert line in out
    assert "memberships: 2" in out and "messages: 32" in out and "uploads: 1" in out

    postgres = open_postgres(url, tmp_path / "state", fsync=False)
    tinydb = open_tinydb(data_dir / "state", fsync=False)
    try:
        assert postgres.users.by_username("alice") == tinydb.users.by_username("alice")
        assert postgres.users.token("h1") == tinydb.users.token("h1")
        assert postgres.downloads.get("d1") == tinydb.downloads.get("d1")
        assert postgres.downloads.unfinished() == tinydb.downloads.unfinished()
        assert postgres.operations.latest() == tinydb.operations.latest()
        assert postgres.workspace.rooms(None) == tinydb.workspace.rooms(None)
        assert postgres.workspace.is_member("R2", "u2")
        assert list(postgres.workspace.messages("R1")) == list(tinydb.workspace.messages("R1"))
        assert postgres.workspace.pending_file_count() == 1
        assert postgres.workspace.upload("U1") == {"_id": "U1", "name": "a.txt"}
    finally:
        postgres.close()
        tinydb.close()

    assert main(["migrate-storage", "--from", str(data_dir), "--to", url]) == 1
    assert "already holds records" in capsys.readouterr().err


def test_migrate_storage_needs_a_data_directory(tmp_path):
    with pytest.raises(SystemExit, match="no state/ directory"):
        main(["migrate-storage", "--from", str(tmp_path / "none"), "--to", "postgresql://x/y"])
