-- Work on an import operation is a job any worker process may claim, as downloads are:
-- `job` and `job_input` say what to do, `queued_at` orders the queue, and the worker
-- holds the operation for `lease_until`, renewing it while it works. A worker may hold
-- an operation with no job (an upload arriving), so that an operation nobody holds and
-- nobody may claim is known to be abandoned. `status` is the document's, for that test.
ALTER TABLE operations
    ADD COLUMN status text NOT NULL DEFAULT '',
    ADD COLUMN job text,
    ADD COLUMN job_input json,
    ADD COLUMN queued_at timestamptz,
    ADD COLUMN worker_id text,
    ADD COLUMN lease_until timestamptz;

-- Read off the text: the json operators refuse a document holding a NUL character.
UPDATE operations SET status = coalesce(substring(doc::text from '"status":[[:space:]]*"([^"]*)"'), '');

CREATE INDEX operations_queued ON operations (queued_at, id) WHERE job IS NOT NULL;
CREATE INDEX operations_by_status ON operations (status) WHERE valid;
