-- Imported omnichannel contacts, and the import ids that find them again on a re-import.
CREATE TABLE contacts (
    id text PRIMARY KEY,
    doc json NOT NULL,
    created_at text NOT NULL
);
CREATE INDEX contacts_by_creation ON contacts (created_at COLLATE "C", id COLLATE "C");

CREATE TABLE contact_import_ids (
    import_id text PRIMARY KEY,
    contact_id text NOT NULL REFERENCES contacts (id) ON DELETE CASCADE
);
