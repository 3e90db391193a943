"""The numbered migration files a PostgreSQL database is upgraded through."""

from __future__ import annotations

import pytest

from storage.postgres import migrate


def test_shipped_migrations_are_numbered_one_after_another():
    versions = [m.version for m in migrate.available()]
    assert versions == list(range(1, len(versions) + 1))


def test_two_files_with_one_number_are_refused_instead_of_one_being_skipped(tmp_path, monkeypatch):
    (tmp_path / "0001_initial.sql").write_text("SELECT 1;")
    (tmp_path / "0002_contacts.sql").write_text("SELECT 1;")
    (tmp_path / "0002_jobs.sql").write_text("SELECT 1;")
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path)
    with pytest.raises(RuntimeError, match="share a number"):
        migrate.available()
