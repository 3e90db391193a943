-- Ferry's schema on PostgreSQL. Each record is kept whole as `doc` (the same JSON the
-- TinyDB backend stores); the columns beside it are what the API filters and orders by,
-- so that every query the API runs has an index. `doc` is json, not jsonb: jsonb refuses
-- the NUL character, which a record may hold (a hostile file name, a chat message).

CREATE TABLE users (
    id text PRIMARY KEY,
    doc json NOT NULL,
    username_key text,                       -- casefolded username
    email_keys text[] NOT NULL DEFAULT '{}', -- casefolded, trimmed addresses
    import_ids text[] NOT NULL DEFAULT '{}',
    created_at text NOT NULL DEFAULT '',
    active_admin boolean NOT NULL DEFAULT false,
    pending_avatar boolean NOT NULL DEFAULT false,
    inserted bigserial NOT NULL              -- first inserted wins a shared lookup key
);
CREATE INDEX users_by_username ON users (username_key);
CREATE INDEX users_by_email ON users USING gin (email_keys);
CREATE INDEX users_by_import_id ON users USING gin (import_ids);
CREATE INDEX users_by_creation ON users (created_at COLLATE "C", id COLLATE "C");
CREATE INDEX users_active_admins ON users (id) WHERE active_admin;
CREATE INDEX users_pending_avatars ON users (id) WHERE pending_avatar;

CREATE TABLE tokens (
    token_hash text PRIMARY KEY,
    user_id text NOT NULL,
    created_at text NOT NULL,
    expires_at text                          -- NULL: stored before tokens expired
);
CREATE INDEX tokens_by_user ON tokens (user_id);
CREATE INDEX tokens_by_expiry ON tokens (expires_at COLLATE "C");

CREATE TABLE downloads (
    id text PRIMARY KEY,
    doc json NOT NULL,
    active boolean NOT NULL,                 -- starting or downloading
    end_time double precision NOT NULL DEFAULT 0,
    finished_ns bigint NOT NULL DEFAULT 0,
    start_time double precision NOT NULL DEFAULT 0
);
CREATE INDEX downloads_history ON downloads (end_time DESC, finished_ns DESC, start_time DESC)
    WHERE NOT active;
CREATE INDEX downloads_unfinished ON downloads (id) WHERE active;

CREATE TABLE operations (
    id text PRIMARY KEY,
    doc json NOT NULL,
    ts text NOT NULL,
    updated_at text NOT NULL,
    valid boolean NOT NULL DEFAULT true
);
CREATE INDEX operations_by_creation ON operations (ts COLLATE "C" DESC, id COLLATE "C" DESC);
CREATE INDEX operations_by_update ON operations (updated_at COLLATE "C" DESC);
CREATE INDEX operations_valid ON operations (id) WHERE valid;

CREATE TABLE rooms (
    id text PRIMARY KEY,
    doc json NOT NULL,
    t text NOT NULL,
    name text,
    sort_name text COLLATE "C" NOT NULL,     -- name, or a direct room's usernames joined
    members_key text,                        -- a direct room's sorted member ids joined
    import_ids text[] NOT NULL DEFAULT '{}',
    inserted bigserial NOT NULL
);
CREATE INDEX rooms_by_name ON rooms (name);
CREATE INDEX rooms_by_import_id ON rooms USING gin (import_ids);
CREATE INDEX rooms_direct_by_members ON rooms (members_key) WHERE t = 'd';
CREATE INDEX rooms_ordered ON rooms (sort_name, id COLLATE "C");
CREATE INDEX rooms_ordered_by_type ON rooms (t, sort_name, id COLLATE "C");

-- Written before or after the room itself, so no foreign key.
CREATE TABLE room_members (
    room_id text NOT NULL,
    user_id text NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_by_user ON room_members (user_id, room_id);

CREATE TABLE messages (
    room_id text NOT NULL,
    id text NOT NULL,
    sort bigint NOT NULL,                    -- the message time in microseconds
    doc json NOT NULL,
    visible boolean NOT NULL,                -- not hidden
    main boolean NOT NULL,                   -- visible, and shown in the room (not a thread reply)
    pending_file_id text,                    -- its file still waits for a download
    PRIMARY KEY (room_id, id)
);
CREATE INDEX messages_history ON messages (room_id, sort, id COLLATE "C");
CREATE INDEX messages_visible ON messages (room_id, sort, id COLLATE "C") WHERE visible;
CREATE INDEX messages_main ON messages (room_id, sort, id COLLATE "C") WHERE main;
CREATE INDEX messages_pending_files ON messages (pending_file_id, room_id)
    WHERE pending_file_id IS NOT NULL;

CREATE TABLE uploads (
    id text PRIMARY KEY,
    doc json NOT NULL
);
