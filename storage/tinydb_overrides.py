"""Ferry's replacements for private behaviour of TinyDB, kept in this one module.

TinyDB's `Table._update_table` reads the stored table, copies it into a new dict with
every id converted to the id class, lets the change run on that copy, and copies it
back with the ids turned into strings again: every save copies the whole table twice.
Ferry's ids are strings both ways, so KeyedTable's `_update_table` lets the change run
on the stored table itself: a save costs what it changes, not the whole table copied
twice. `peek` reads one stored document through `_read_table` without TinyDB's
copy. Ids are always given (every Ferry document carries its own string id), so
`_get_next_id`, which TinyDB calls to invent one, refuses instead. `insert_multiple`
reads the table through the private `_read_table` to refuse a batch holding a taken
id before anything changes. The storage must offer `changed(table, doc_ids)`, as
storage.store.AtomicCachedStorage does: every change reports the documents it touched.

Written against TinyDB 4.9.0, for the versions pyproject.toml pins (`WRITTEN_AGAINST`,
tinydb>=4.8,<5). tests/unit/storage/test_tinydb_overrides.py fails when that pin moves,
when the installed TinyDB is outside it, or when the private methods used here are gone
or take other arguments.
"""

from __future__ import annotations

from collections.abc import Mapping

from tinydb import TinyDB
from tinydb.table import Table

WRITTEN_AGAINST = "tinydb>=4.8,<5"


class KeyedTable(Table):
    """A table whose document ids are our own string ids, so lookups by id are O(1).

    Each change tells the storage which documents it touched, so that a journaled
    storage can record those alone.
    """

    document_id_class = str

    def _get_next_id(self):  # pragma: no cover - every insert in Ferry names its id
        raise TypeError("Ferry tables need an explicit string id on insert")

    def _touched(self, doc_ids: list | None) -> None:
        self.storage.changed(self.name, None if doc_ids is None else [str(i) for i in doc_ids])

    def _update_table(self, updater) -> None:
        # TinyDB copies the whole table twice per change, to convert ids to and from the
        # id class; ours are strings both ways, so the stored table is changed in place
        # and a save costs what it changes, not what the table holds.
        tables = self._storage.read()
        if tables is None:
            tables = {}
        table = tables.get(self.name)
        if table is None:
            table = tables[self.name] = {}
        updater(table)
        try:
            self._storage.write(tables)
        finally:
            # Also after a failed write, whose storage goes back to the file: no cached
            # query may keep showing the change.
            self.clear_cache()

    def peek(self, doc_id: str) -> dict | None:
        """The stored document itself, not a copy, or None: for reading fields only,
        under the store's lock, where copying every candidate would cost more than the
        read (claiming looks at every queued record on each start)."""
        return self._read_table().get(doc_id)

    def insert(self, document):
        doc_id = super().insert(document)
        self._touched([doc_id])
        return doc_id

    def insert_multiple(self, documents):
        # Refused before any change: the table is changed in place, so an insert that
        # failed half-way would otherwise leave its first documents behind.
        documents = list(documents)
        existing = self._read_table()
        seen: set[str] = set()
        for document in documents:
            if not isinstance(document, Mapping):
                raise ValueError("Document is not a Mapping")
            doc_id = getattr(document, "doc_id", None)
            if doc_id is None:
                self._get_next_id()  # refuses, as for a single insert
            if doc_id in existing or doc_id in seen:
                raise ValueError(f"Document with ID {doc_id} already exists")
            seen.add(doc_id)
        doc_ids = super().insert_multiple(documents)
        self._touched(doc_ids)
        return doc_ids

    def update(self, fields, cond=None, doc_ids=None):
        changed = super().update(fields, cond, doc_ids)
        self._touched(changed)
        return changed

    def update_multiple(self, updates):
        changed = super().update_multiple(updates)
        self._touched(changed)
        return changed

    def upsert(self, document, cond=None):
        changed = super().upsert(document, cond)
        self._touched(changed)
        return changed

    def remove(self, cond=None, doc_ids=None):
        removed = super().remove(cond, doc_ids)
        self._touched(removed)
        return removed

    def truncate(self) -> None:
        super().truncate()
        self._touched(None)


class FerryTinyDB(TinyDB):
    """TinyDB whose tables are KeyedTables."""

    table_class = KeyedTable
