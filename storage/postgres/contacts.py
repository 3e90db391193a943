"""Omnichannel contacts on PostgreSQL; the same methods as storage.contacts."""

from __future__ import annotations

from collections.abc import Iterable

from storage.postgres.connection import Database, document


class ContactRepository:
    def __init__(self, database: Database):
        self._db = database

    def id_for_import_id(self, import_id: str) -> str | None:
        with self._db.connection() as connection:
            row = connection.execute(
                "SELECT contact_id FROM contact_import_ids WHERE import_id = %s", (import_id,)
            ).fetchone()
        return row[0] if row else None

    def insert_many(self, contacts: Iterable[dict]) -> None:
        """Insert new contacts in one transaction; each must carry a unique `_id`. An import
        id already known keeps the contact it names."""
        contacts = list(contacts)
        if not contacts:
            return
        with self._db.transaction() as connection, connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO contacts (id, doc, created_at) VALUES (%s, %s, %s)",
                [(c["_id"], document(c), c.get("createdAt") or "") for c in contacts],
            )
            cursor.executemany(
                "INSERT INTO contact_import_ids (import_id, contact_id) VALUES (%s, %s) "
                "ON CONFLICT (import_id) DO NOTHING",
                [(i, c["_id"]) for c in contacts for i in c.get("importIds") or []],
            )

    def get(self, contact_id: str) -> dict | None:
        with self._db.connection() as connection:
            row = connection.execute(
                "SELECT doc FROM contacts WHERE id = %s", (contact_id,)
            ).fetchone()
        return row[0] if row else None

    def all(self) -> list[dict]:
        """Every contact, oldest first; those of one import in the order inserted."""
        with self._db.connection() as connection:
            rows = connection.execute(
                'SELECT doc FROM contacts ORDER BY created_at COLLATE "C"'
            ).fetchall()
        return [row[0] for row in rows]
