-- Foundation schema (PostgreSQL). Timestamps are UTC microseconds since the Unix epoch and local
-- dates are days since 1970-01-01, identical to the SQLite schema, so both backends share one
-- set of queries and one contract test suite.

CREATE TABLE users (
    id            UUID   PRIMARY KEY,
    username      TEXT   NOT NULL,
    display_name  TEXT   NOT NULL,
    timezone      TEXT   NOT NULL,
    password_hash TEXT   NOT NULL,
    created_at_us BIGINT NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username)
);

-- Only a SHA-256 of each bearer token is stored: a leaked table grants no access.
CREATE TABLE sessions (
    token_hash    BYTEA  PRIMARY KEY,
    user_id       UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE activities (
    id            UUID             PRIMARY KEY,
    user_id       UUID             NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sport         TEXT             NOT NULL CHECK (sport IN ('run', 'ride', 'swim', 'walk', 'hike', 'other')),
    title         TEXT             NOT NULL,
    started_at_us BIGINT           NOT NULL,
    utc_offset_s  INTEGER          NOT NULL,
    local_day     INTEGER          NOT NULL,
    duration_s    INTEGER          NOT NULL CHECK (duration_s BETWEEN 1 AND 2592000),
    distance_m    DOUBLE PRECISION NOT NULL CHECK (distance_m BETWEEN 0 AND 10000000),
    visibility    TEXT             NOT NULL CHECK (visibility IN ('private', 'friends', 'public')),
    created_at_us BIGINT           NOT NULL,
    updated_at_us BIGINT           NOT NULL
);
-- Serves "my activities, newest first, ties by id descending" as an index range scan.
CREATE INDEX activities_user_started ON activities (user_id, started_at_us DESC, id DESC);

-- A retried POST /activities with the same key returns the first result instead of a copy.
CREATE TABLE idempotency_keys (
    user_id       UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key           TEXT   NOT NULL,
    fingerprint   BYTEA  NOT NULL,
    activity_id   UUID   NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
