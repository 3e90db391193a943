-- chat.getMessage finds a message by its id alone; the thread reads find a thread's
-- replies and the messages of a room that start a thread.
CREATE INDEX messages_by_id ON messages (id);

ALTER TABLE messages ADD COLUMN tmid text GENERATED ALWAYS AS (doc ->> 'tmid') STORED;
ALTER TABLE messages
    ADD COLUMN thread_root boolean GENERATED ALWAYS AS ((doc ->> 'tcount') IS NOT NULL) STORED;
CREATE INDEX messages_thread_replies ON messages (room_id, tmid, sort, id COLLATE "C")
    WHERE tmid IS NOT NULL AND visible;
CREATE INDEX messages_thread_roots ON messages (room_id, sort, id COLLATE "C")
    WHERE thread_root AND visible;
