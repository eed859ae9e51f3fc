-- Photos of activities. The blobs live in the blob store under names derived from the id,
-- kind and format (see stride_domain::blob_name); a row exists only once all three are stored.
CREATE TABLE photos (
    id                 UUID    PRIMARY KEY,
    activity_id        UUID    NOT NULL REFERENCES activities (id) ON DELETE CASCADE,
    user_id            UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position           INTEGER NOT NULL CHECK (position >= 0),
    width              INTEGER NOT NULL CHECK (width > 0),
    height             INTEGER NOT NULL CHECK (height > 0),
    original_format    TEXT    NOT NULL CHECK (original_format IN ('jpeg', 'png', 'webp')),
    original_bytes     BIGINT  NOT NULL,
    display_format     TEXT    NOT NULL CHECK (display_format IN ('jpeg', 'png', 'webp')),
    display_width      INTEGER NOT NULL,
    display_height     INTEGER NOT NULL,
    display_bytes      BIGINT  NOT NULL,
    thumb_format       TEXT    NOT NULL CHECK (thumb_format IN ('jpeg', 'png', 'webp')),
    thumb_width        INTEGER NOT NULL,
    thumb_height       INTEGER NOT NULL,
    thumb_bytes        BIGINT  NOT NULL,
    sha256             BYTEA   NOT NULL,
    processing_version INTEGER NOT NULL,
    created_at_us      BIGINT  NOT NULL,
    CONSTRAINT photos_activity_position_key UNIQUE (activity_id, position)
);
CREATE INDEX photos_user_id ON photos (user_id);
-- Re-processing walks photos older than the current processing version.
CREATE INDEX photos_processing_version ON photos (processing_version, id);

ALTER TABLE activities ADD COLUMN photo_count INTEGER NOT NULL DEFAULT 0 CHECK (photo_count >= 0);

-- A retried upload with the same Idempotency-Key answers with the photos the first one made.
-- The fingerprint digests the files' names, sizes and SHA-256s (a retry's multipart boundary
-- differs, so the raw body cannot be compared).
CREATE TABLE photo_upload_keys (
    user_id       UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key           TEXT   NOT NULL,
    fingerprint   BYTEA  NOT NULL,
    activity_id   UUID   NOT NULL,
    photo_ids     TEXT   NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX photo_upload_keys_created_at ON photo_upload_keys (created_at_us);
