-- Archives: one import of a zip (a folder of watch files, or Strava's export) whose items are
-- planned from the archive's directory by its job; the progress a running import reports.

-- The archive's blob while the import needs it (NULL for an import of separate files).
ALTER TABLE imports ADD COLUMN archive_key TEXT;
-- Items per second over the running attempt, recorded by the job about once a second.
ALTER TABLE imports ADD COLUMN rate_per_s REAL;
CREATE INDEX imports_archive_key ON imports (archive_key) WHERE archive_key IS NOT NULL;

-- Strava's id of an activity imported from its export: a row without a file is recognised
-- by it the second time. Kept with the activity (cascade): deleting it forgets the id.
CREATE TABLE strava_activities (
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    strava_id   TEXT NOT NULL,
    activity_id BLOB NOT NULL REFERENCES activities (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, strava_id)
) STRICT;
CREATE INDEX strava_activities_activity ON strava_activities (activity_id);
