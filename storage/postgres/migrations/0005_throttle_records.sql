-- Small records that every API instance reads and changes together: the login
-- throttle's counts of failed logins, one row per counter and key. `last_seen` (Unix
-- seconds) lets stale rows be removed.
CREATE TABLE throttle_records (
    counter text NOT NULL,
    key text NOT NULL,
    doc jsonb NOT NULL,
    last_seen double precision NOT NULL,
    PRIMARY KEY (counter, key)
);

CREATE INDEX throttle_records_last_seen ON throttle_records (last_seen);
