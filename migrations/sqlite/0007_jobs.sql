-- Durable background jobs. One row per job; `attempt` fences every transition out of
-- `running` (see stride_domain::jobs for the state machine).
CREATE TABLE jobs (
    id             BLOB    PRIMARY KEY NOT NULL,
    kind           TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('available', 'running', 'completed', 'retryable', 'discarded', 'cancelled')),
    attempt        INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts   INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at_us      INTEGER NOT NULL,
    lease_until_us INTEGER,
    unique_key     TEXT,
    last_error     TEXT,
    created_at_us  INTEGER NOT NULL,
    finished_at_us INTEGER
) STRICT;
-- What a claim reads: waiting jobs of one kind, oldest first, and running ones by lease (the
-- rescue). Partial, so each claim is an ordered index range that stops at its limit however
-- long the backlog or the history of finished jobs.
CREATE INDEX jobs_due ON jobs (kind, run_at_us, id) WHERE state IN ('available', 'retryable');
CREATE INDEX jobs_leases ON jobs (kind, lease_until_us) WHERE state = 'running';
-- A unique key holds only while its job is not final: once done, the key may be used again.
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('available', 'running', 'retryable');
-- Purging finished jobs after their retention.
CREATE INDEX jobs_finished ON jobs (finished_at_us) WHERE finished_at_us IS NOT NULL;
