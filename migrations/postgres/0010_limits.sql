-- Abuse limits shared by every replica (failed logins, registrations, username lookups): one
-- row per key holds a token bucket as its "theoretical arrival time" (GCRA), updated by one
-- atomic upsert per attempt, so a limit holds however many processes serve.
CREATE TABLE rate_limits (
    key     TEXT    NOT NULL PRIMARY KEY,
    tat_us  BIGINT  NOT NULL,
    refused INTEGER NOT NULL
);

-- Keys the server made for itself (the CSRF tokens' HMAC key), made by whichever replica
-- starts first and read by the others.
CREATE TABLE server_keys (
    name   TEXT NOT NULL PRIMARY KEY,
    secret TEXT NOT NULL
);
