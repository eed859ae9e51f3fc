-- Tracks: activities made from GPX, TCX and FIT files, the imports that make them, and the
-- privacy zones that hide parts of them from others.

-- `track` is the summary (distance, times, climb, splits, polyline…) as JSON; the points live
-- in the blob store (tracks/<activity id>.points), the original file under its import item.
ALTER TABLE activities ADD COLUMN description TEXT;
ALTER TABLE activities ADD COLUMN source TEXT NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'gpx', 'tcx', 'fit'));
ALTER TABLE activities ADD COLUMN track TEXT;

-- The file each track came from. Unique per user and content: the same bytes are imported
-- once; deleting the activity (cascade) forgets the hash.
CREATE TABLE track_files (
    activity_id UUID    PRIMARY KEY REFERENCES activities (id) ON DELETE CASCADE,
    user_id     UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sha256      BYTEA    NOT NULL,
    name        TEXT    NOT NULL,
    blob_key    TEXT    NOT NULL,
    bytes       BIGINT  NOT NULL,
    CONSTRAINT track_files_user_sha256_key UNIQUE (user_id, sha256)
);

CREATE TABLE imports (
    id              UUID    PRIMARY KEY,
    user_id         UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state           TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    sport           TEXT,
    visibility      TEXT    NOT NULL,
    total           BIGINT,
    imported        INTEGER NOT NULL DEFAULT 0,
    duplicate       INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    cancelled       INTEGER NOT NULL DEFAULT 0,
    error_code      TEXT,
    error_message   TEXT,
    created_at_us   BIGINT  NOT NULL,
    finished_at_us  BIGINT 
);
CREATE INDEX imports_user_newest ON imports (user_id, created_at_us DESC, id DESC);
CREATE INDEX imports_active ON imports (user_id, state) WHERE state IN ('queued', 'running');

CREATE TABLE import_items (
    import_id     UUID    NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL CHECK (idx >= 0),
    name          TEXT    NOT NULL,
    blob_key      TEXT    NOT NULL,
    bytes         BIGINT  NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('queued', 'imported', 'duplicate', 'failed', 'cancelled')),
    activity_id   UUID,
    error_code    TEXT,
    error_message TEXT,
    warnings      TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (import_id, idx)
);
CREATE INDEX import_items_blob_key ON import_items (blob_key);

-- A retried POST /imports with the same Idempotency-Key answers the first import.
CREATE TABLE import_keys (
    user_id       UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key           TEXT    NOT NULL,
    import_id     UUID    NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    created_at_us BIGINT  NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX import_keys_created_at ON import_keys (created_at_us);

CREATE TABLE privacy_zones (
    id            UUID    PRIMARY KEY,
    user_id       UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    lat           DOUBLE PRECISION NOT NULL,
    lon           DOUBLE PRECISION NOT NULL,
    radius_m      DOUBLE PRECISION NOT NULL,
    created_at_us BIGINT  NOT NULL
);
CREATE INDEX privacy_zones_user ON privacy_zones (user_id, id);
