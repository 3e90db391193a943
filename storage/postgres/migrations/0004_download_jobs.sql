-- A download that is queued or running is a job any worker process may claim: the
-- worker holds it for `lease_until` and renews that while it runs; a lease that runs
-- out (its worker died) makes the job claimable again. `worker_id` stays set when a
-- lease runs out, so the next claimer knows it takes over from a crashed worker, and
-- is cleared when a worker hands the job back. `stop_request` is a cancel or a pause
-- asked for on another instance, read by the worker at its next renewal.
ALTER TABLE downloads
    ADD COLUMN runnable boolean NOT NULL DEFAULT false,    -- starting or downloading
    ADD COLUMN file_kind boolean NOT NULL DEFAULT true,    -- a file download, not an import's
    ADD COLUMN worker_id text,
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN stop_request text,
    ADD COLUMN received bigint;                            -- bytes so far, told by renewals

-- Read off the text: the json operators refuse a document holding a NUL character.
UPDATE downloads SET
    runnable = doc::text ~ '"status":[[:space:]]*"(starting|downloading)"',
    file_kind = doc::text !~ '"kind":[[:space:]]*"(import|pending-file|pending-avatar)"';

CREATE INDEX downloads_claimable ON downloads (start_time, id) WHERE runnable;
CREATE INDEX downloads_by_worker ON downloads (worker_id) WHERE worker_id IS NOT NULL;
